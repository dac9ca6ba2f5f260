import Foundation
import NinePTestSupport
import Testing

/// The `ninep` command where it used to be unsafe or misleading: --uname acting as the caller,
/// ^C ignored during the handshake with a silent server, a handshake timeout reported as a lost
/// connection, an unknown host reported as "No route to host"; and sizes with suffixes.
@Suite(.serialized)
struct NinepSafeCLITests {
    static var ninep: String { Paths.ninepd.deletingLastPathComponent().appendingPathComponent("ninep").path }

    func ninep(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> (status: Int32, output: String) {
        try run(Self.ninep, arguments, timeout: timeout)
    }

    @Test(.enabled(if: geteuid() == 0, "needs root: ninepd switches to the attaching user only as root"))
    func unameNobodyAsRootCreatesAsNobody() throws {
        let root = try Paths.temporaryDirectory("ninep-uname")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        chmod(export.path, 0o1777)
        let local = root.appendingPathComponent("local.txt")
        try Data("from nobody\n".utf8).write(to: local)
        let server = try NinepdProcess(export: export, extraArguments: ["--memory-budget", "16M"], logDirectory: root)
        defer { _ = server.stop() }
        let address = ["--server", "127.0.0.1:\(server.port)"]

        var result = try ninep(["put", local.path, "/by-nobody.txt", "--uname", "nobody"] + address)
        #expect(result.status == 0, "put --uname nobody: \(result.output)")
        var info = stat()
        #expect(stat(export.appendingPathComponent("by-nobody.txt").path, &info) == 0)
        #expect(info.st_uid == 65534, "owner of a file put with --uname nobody: uid \(info.st_uid), not nobody (65534)")
        #expect(info.st_gid == getpwnam("nobody").pointee.pw_gid, "group: nobody's primary group, not the caller's (gid \(info.st_gid))")

        // As nobody, root's files are not root's to change.
        try Data("root's\n".utf8).write(to: export.appendingPathComponent("roots.txt"))
        chmod(export.appendingPathComponent("roots.txt").path, 0o644)
        result = try ninep(["put", local.path, "/roots.txt", "--uname", "nobody"] + address)
        #expect(result.status != 0 && result.output.contains("Permission denied"), "nobody overwriting root's file: \(result.status) \(result.output)")
        #expect(try String(contentsOf: export.appendingPathComponent("roots.txt"), encoding: .utf8) == "root's\n")

        // A name this host does not know goes as NONUNAME, and ninepd (which does not know it
        // either) refuses the attach: before, it went with the caller's uid and acted as root.
        result = try ninep(["ls", "/", "--uname", "no-such-user-ninep"] + address)
        #expect(result.status == 2 && result.output.contains("Permission denied"), "attach as an unknown user: \(result.status) \(result.output)")

        // Without --uname: the caller (root).
        result = try ninep(["put", local.path, "/by-root.txt"] + address)
        #expect(result.status == 0, "put as the caller: \(result.output)")
        #expect(stat(export.appendingPathComponent("by-root.txt").path, &info) == 0 && info.st_uid == 0)
    }

    @Test func interruptDuringTheHandshakeWithASilentServerExits130() throws {
        // Accepts (in the kernel's backlog) and never answers Tversion.
        let silent = try LoopbackListener()
        let output = "/tmp/ninep-sigint-\(getpid()).log"
        defer { unlink(output) }
        let child = try Spawned(Self.ninep, ["ls", "/", "--server", "127.0.0.1:\(silent.port)"], output: output)
        defer { child.terminate() }
        // Long enough to be connected and waiting for Rversion (the default limit is 30 s).
        usleep(1_000_000)
        #expect(child.isRunning, "ninep was still waiting for the silent server")
        let sent = ContinuousClock.now
        kill(child.pid, SIGINT)
        let exited = child.wait(timeout: .seconds(2))
        let elapsed = ContinuousClock.now - sent
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(exited, "ninep still running 2 s after SIGINT; output: \(text)")
        #expect(elapsed < .milliseconds(1500), "exit took \(elapsed) after SIGINT")
        #expect(child.status == 130, "status after ^C: \(child.status ?? -1) (130 expected); output: \(text)")
        #expect(text.contains("ninep: ls: interrupted"), "message after ^C: \(text)")
    }

    @Test func timeoutDuringTheHandshakeSaysTimedOut() throws {
        let silent = try LoopbackListener()
        let began = ContinuousClock.now
        let result = try ninep(["ls", "/", "--server", "127.0.0.1:\(silent.port)", "--timeout", "1"], timeout: .seconds(20))
        let elapsed = ContinuousClock.now - began
        #expect(result.status == 2, "status: \(result.status); \(result.output)")
        #expect(result.output.contains("tcp:127.0.0.1:\(silent.port): timed out") && result.output.contains("within 1 s"),
                "message names the server and the seconds: \(result.output)")
        #expect(!result.output.contains("connection to the server lost"), "not a lost connection: \(result.output)")
        #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(5), "gave up after \(elapsed), --timeout 1")
    }

    @Test func unknownAndMissingHostsAreNamed() throws {
        var result = try ninep(["ls", "/", "--server", "no-such-host.invalid:5640"])
        #expect(result.status == 2 && result.output.contains("unknown host 'no-such-host.invalid'"), "\(result.status): \(result.output)")
        #expect(!result.output.contains("No route to host"), "\(result.output)")
        result = try ninep(["ls", "/", "--server", "tcp::5640"])
        #expect(result.status == 64 && result.output.contains("missing host"), "\(result.status): \(result.output)")
    }

    @Test func benchSizesTakeSuffixes() throws {
        let root = try Paths.temporaryDirectory("ninep-sizes")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        let server = try NinepdProcess(export: export, extraArguments: ["--memory-budget", "16M"], logDirectory: root)
        defer { _ = server.stop() }
        // KiB and M, read as --msize and --memory-budget are (MemoryPlan.parse).
        var result = try ninep(["bench", "--workload", "seqwrite", "--size", "64KiB", "--file-size", "1M", "--json",
                                "--server", "127.0.0.1:\(server.port)"])
        #expect(result.status == 0, "bench --size 64KiB --file-size 1M: \(result.output)")
        #expect(result.output.contains("\"ioSize\":65536") || result.output.contains("65536"), "the size used: \(result.output.prefix(800))")
        result = try ninep(["bench", "--size", "64Q", "--server", "127.0.0.1:\(server.port)"])
        #expect(result.status == 64 && result.output.contains("64Q"), "a size that is not one: \(result.status) \(result.output)")
    }

    @Test func versionNamesTheCommit() throws {
        let inGit = FileManager.default.fileExists(atPath: Paths.packageRoot.appendingPathComponent(".git").path)
        for (program, path) in [("ninep", Self.ninep), ("ninepd", Paths.ninepd.path)] {
            let result = try run(path, ["--version"], timeout: .seconds(30))
            let line = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let pattern = inGit ? "^\(program) [0-9]+\\.[0-9]+\\.[0-9]+ \\(commit [0-9a-f]{7,}\\)$" : "^\(program) [0-9.]+ \\(commit unknown\\)$"
            #expect(result.status == 0 && line.range(of: pattern, options: .regularExpression) != nil, "\(program) --version: '\(line)'")
        }
    }
}
