import Foundation
import NinePTestSupport
import Testing

/// Helpers of the integration tests: paths, a ninepd process, the guest scripts' results
/// (child processes and ports come from NinePTestSupport).
enum Paths {
    /// The package root (this file is Tests/IntegrationTests/Support.swift).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The ninepd binary built next to the test bundle.
    static var ninepd: URL {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        // The test binary may sit inside a .xctest bundle directory.
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("ninepd")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/ninepd")
    }

    static func temporaryDirectory(_ prefix: String) throws -> URL {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed: errno \(errno)") }
        return URL(fileURLWithPath: String(cString: made))
    }

    /// A temporary directory with an empty export/ and results/ in it, for a kernel client
    /// run (the caller removes `root`).
    static func kernelRunDirectories(_ prefix: String) throws -> (root: URL, export: URL, results: URL) {
        let root = try temporaryDirectory(prefix)
        let export = root.appendingPathComponent("export")
        let results = root.appendingPathComponent("results")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: results, withIntermediateDirectories: true)
        return (root, export, results)
    }
}

/// A ninepd process started for one test, stopped with SIGTERM.
final class NinepdProcess {
    let child: Spawned
    let port: UInt16
    let log: URL

    /// `descriptorLimit` runs ninepd under a lower RLIMIT_NOFILE (soft and hard).
    convenience init(export: URL, extraArguments: [String] = [], logDirectory: URL, descriptorLimit: Int? = nil) throws {
        try self.init(arguments: ["--export", export.path] + extraArguments, logDirectory: logDirectory, descriptorLimit: descriptorLimit)
    }

    /// ninepd with `arguments` and a --listen on a free loopback port (e.g. with --config).
    init(arguments given: [String], logDirectory: URL, descriptorLimit: Int? = nil) throws {
        port = try freeLoopbackPort()
        log = logDirectory.appendingPathComponent("ninepd.log")
        let arguments = given + ["--listen", "tcp:127.0.0.1:\(port)"]
        if let descriptorLimit {
            let quoted = ([Paths.ninepd.path] + arguments).map { "'\($0)'" }.joined(separator: " ")
            child = try Spawned("/bin/sh", ["-c", "ulimit -n \(descriptorLimit) && exec \(quoted)"], output: log.path)
        } else {
            child = try Spawned(Paths.ninepd.path, arguments, output: log.path)
        }
        guard waitForListener(port: port) else {
            child.terminate()
            throw TestFailure("ninepd did not start listening on port \(port); log: \(logText)")
        }
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// SIGTERM (to ninepd only), then its exit status; nil if it had to be killed.
    func stop(timeout: Duration = .seconds(10)) -> Int32? {
        if !child.isRunning { return child.status }
        kill(child.pid, SIGTERM)
        if child.wait(timeout: timeout) { return child.status }
        child.terminate(grace: .seconds(1))
        return nil
    }
}

/// Runs a command to completion with a timeout; returns exit status and combined output.
func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(600)) throws -> (status: Int32, output: String) {
    let output = "/tmp/ninep-run-\(UUID().uuidString).log"
    defer { unlink(output) }
    let child = try Spawned(executable, arguments, output: output)
    let finished = child.wait(timeout: timeout)
    let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    guard finished else {
        child.terminate()
        throw TestFailure("\(executable) timed out after \(timeout); output: \(text.suffix(3000))")
    }
    return (child.status ?? -1, text)
}

/// One check of a guest-side script's results.json (battery.py, interrupt.py).
struct GuestCheck {
    let name: String
    let ok: Bool
    let skipped: Bool
    let detail: String
    let seconds: Double
}

/// Reads the checks the guest script wrote to `results`/results.json; records an issue (with
/// the harness and script output) and returns nil when the run produced none.
func guestChecks(in results: URL, harness outcome: (status: Int32, output: String)) throws -> [GuestCheck]? {
    let resultsFile = results.appendingPathComponent("results.json")
    guard outcome.status == 0, let data = FileManager.default.contents(atPath: resultsFile.path) else {
        let stdout = (try? String(contentsOf: results.appendingPathComponent("battery.stdout"), encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: results.appendingPathComponent("battery.stderr"), encoding: .utf8)) ?? ""
        Issue.record("""
            the kernel client run produced no results (status \(outcome.status)): \(outcome.output.suffix(3000))
            checks so far: \(stdout.suffix(4000)) \(stderr.suffix(2000))
            """)
        return nil
    }
    let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    return (json["checks"] as? [[String: Any]] ?? []).map { check in
        GuestCheck(
            name: check["name"] as? String ?? "?", ok: check["ok"] as? Bool ?? false,
            skipped: check["skipped"] as? Bool ?? false, detail: check["detail"] as? String ?? "",
            seconds: check["seconds"] as? Double ?? 0)
    }
}

/// Expects every check ok and none skipped; prints a summary line per check.
func expectAllPassed(_ checks: [GuestCheck], title: String, detailLimit: Int = 160) {
    var summary: [String] = []
    for check in checks {
        let passed = check.ok && !check.skipped
        #expect(passed, "\(title) \(check.name): \(check.detail)")
        summary.append("\(passed ? "ok  " : "FAIL") \(check.name) (\(String(format: "%.2f", check.seconds)) s) \(check.detail.prefix(detailLimit))")
    }
    print("\(title):\n  " + summary.joined(separator: "\n  "))
}

/// Runs `scripts/NAME` (a python check of the FUSE mount: it starts its own servers and mount
/// daemon, and prints "N passed, M failed") with the built binaries and `arguments`, and
/// expects it to exit 0 with no failed check. `label` names the run in a failure.
func expectCheckScriptPasses(_ name: String, _ arguments: [String] = [], timeout: Duration, label: String? = nil) throws {
    let script = Paths.packageRoot.appendingPathComponent("scripts/\(name)").path
    let result = try run("/usr/bin/python3", [script, "--bin-dir", Paths.ninepd.deletingLastPathComponent().path] + arguments, timeout: timeout)
    let what = label ?? ([name] + arguments).joined(separator: " ")
    #expect(result.status == 0, "\(what): \(result.output.suffix(6000))")
    #expect(result.output.contains(" passed, 0 failed"), "\(what): \(result.output.suffix(6000))")
}
