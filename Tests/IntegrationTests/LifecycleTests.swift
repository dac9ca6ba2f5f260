import Foundation
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

    /// SIGHUP's default action ends a process; ninepd logs it and keeps serving.
    @Test func sighupIsLoggedAndServingGoesOn() throws {
        let root = try Paths.temporaryDirectory("ninep-sighup")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        try Data("still here\n".utf8).write(to: export.appendingPathComponent("hello.txt"))
        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }

        #expect(kill(server.child.pid, SIGHUP) == 0)
        let line = "received SIGHUP: reload is not supported yet; nothing changed"
        #expect(waitForLog(server, containing: line), "no SIGHUP line in the log: \(server.logText)")
        let logged = server.logText.split(separator: "\n").first { $0.contains(line) }
        #expect(logged?.contains("notice") == true, "the SIGHUP line is a notice: \(logged ?? "")")
        #expect(server.child.isRunning, "ninepd ended on SIGHUP (status \(server.child.status ?? -1)); log: \(server.logText)")

        let listing = try run(Self.ninep, ["cat", "/hello.txt", "--server", "127.0.0.1:\(server.port)"], timeout: .seconds(30))
        #expect(listing.status == 0 && listing.output == "still here\n", "after SIGHUP: \(listing.output)")
        #expect(server.stop() == 0, "ninepd did not stop cleanly after SIGHUP; log: \(server.logText)")
    }
}
