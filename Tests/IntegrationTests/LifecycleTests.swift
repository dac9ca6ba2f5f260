import Foundation
import NinePTestSupport
import Testing

/// ninepd as a service manager sees it: signals that must not stop it, and where it must
/// refuse to start.
@Suite(.serialized)
struct LifecycleTests {
    static var ninep: String { Paths.ninepd.deletingLastPathComponent().appendingPathComponent("ninep").path }

    /// True once `text` appears in the server's log (within `timeout`).
    func waitForLog(_ server: NinepdProcess, containing text: String, timeout: Duration = .seconds(5)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if server.logText.contains(text) { return true }
            usleep(20_000)
        }
        return server.logText.contains(text)
    }

    /// SIGHUP's default action ends a process; without --config ninepd logs that there is
    /// nothing to reload and keeps serving (with --config: `ConfigFileTests`).
    @Test func sighupIsLoggedAndServingGoesOn() throws {
        let root = try Paths.temporaryDirectory("ninep-sighup")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        try Data("still here\n".utf8).write(to: export.appendingPathComponent("hello.txt"))
        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }

        #expect(kill(server.child.pid, SIGHUP) == 0)
        let line = "received SIGHUP: no config file to reload (exports can change at run time only with --config FILE); nothing changed"
        #expect(waitForLog(server, containing: line), "no SIGHUP line in the log: \(server.logText)")
        let logged = server.logText.split(separator: "\n").first { $0.contains(line) }
        #expect(logged?.contains("notice") == true, "the SIGHUP line is a notice: \(logged ?? "")")
        #expect(server.child.isRunning, "ninepd ended on SIGHUP (status \(server.child.status ?? -1)); log: \(server.logText)")

        let listing = try run(Self.ninep, ["cat", "/hello.txt", "--server", "127.0.0.1:\(server.port)"], timeout: .seconds(30))
        #expect(listing.status == 0 && listing.output == "still here\n", "after SIGHUP: \(listing.output)")
        #expect(server.stop() == 0, "ninepd did not stop cleanly after SIGHUP; log: \(server.logText)")
    }

    /// A second ninepd given the unix socket of a live one exits 1 with a message that says
    /// why, and leaves the socket to the live one; once that one is gone for good (killed, so
    /// its socket file stays behind), the next ninepd replaces the stale file.
    @Test func aSecondNinepdRefusesALiveUnixSocket() throws {
        let root = try Paths.temporaryDirectory("ninep-unix-twice")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        try Data("first\n".utf8).write(to: export.appendingPathComponent("hello.txt"))
        let socketPath = root.appendingPathComponent("ninepd.sock").path
        let first = try NinepdProcess(export: export, extraArguments: ["--listen", "unix:\(socketPath)"], logDirectory: root)
        defer { _ = first.stop() }
        var before = stat()
        #expect(lstat(socketPath, &before) == 0)

        let second = try run(Paths.ninepd.path, ["--export", export.path, "--listen", "unix:\(socketPath)"], timeout: .seconds(30))
        #expect(second.status == 1, "the second ninepd exited \(second.status): \(second.output)")
        #expect(second.output.contains("cannot listen on unix:\(socketPath): another server is accepting connections there; stop it or choose another path"),
                "the second ninepd said: \(second.output)")
        var after = stat()
        #expect(lstat(socketPath, &after) == 0 && after.st_ino == before.st_ino, "the live socket was unlinked or replaced")
        let served = try run(Self.ninep, ["cat", "/hello.txt", "--server", "unix:\(socketPath)"], timeout: .seconds(30))
        #expect(served.status == 0 && served.output == "first\n", "the first ninepd over its socket: \(served.output)")

        // SIGKILL: no clean-up, the socket file stays and nobody accepts on it.
        kill(first.child.pid, SIGKILL)
        #expect(first.child.wait(timeout: .seconds(10)))
        #expect(lstat(socketPath, &after) == 0, "the killed ninepd's socket file is gone; the stale case is not exercised")
        let thirdLogs = root.appendingPathComponent("third")
        try FileManager.default.createDirectory(at: thirdLogs, withIntermediateDirectories: true)
        let third = try NinepdProcess(export: export, extraArguments: ["--listen", "unix:\(socketPath)"], logDirectory: thirdLogs)
        defer { _ = third.stop() }
        let replaced = try run(Self.ninep, ["cat", "/hello.txt", "--server", "unix:\(socketPath)"], timeout: .seconds(30))
        #expect(replaced.status == 0 && replaced.output == "first\n", "ninepd on the replaced stale socket: \(replaced.output)")
        #expect(third.stop() == 0)
    }
}

