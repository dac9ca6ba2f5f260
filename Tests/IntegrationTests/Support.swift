import Foundation
import Testing

/// Helpers shared by the integration tests: paths, free ports, and a ninepd process.
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
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A port that was free a moment ago on 127.0.0.1.
func freeLoopbackPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure("bind to port 0 failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return UInt16(bigEndian: address.sin_port)
}

/// True once something accepts TCP connections on 127.0.0.1:port.
func waitForListener(port: UInt16, timeout: Duration = .seconds(10)) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if connected == 0 { return true }
        usleep(50_000)
    }
    return false
}

/// A child process started with posix_spawn with a clean signal mask and default signal
/// handlers: the test runner's threads block signals (SIGTERM among them), and a mask is
/// inherited across exec, which would leave children unable to be stopped politely.
final class Spawned {
    let pid: pid_t
    private(set) var status: Int32? = nil

    init(_ executable: String, _ arguments: [String], output: String) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child = pid_t()
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw TestFailure("cannot start \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    /// Reaps the child if it has exited; true while it runs.
    var isRunning: Bool {
        if status != nil { return false }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid {
            status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            return false
        }
        return true
    }

    /// Waits up to `timeout`; true if it exited.
    func wait(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            if ContinuousClock.now >= deadline { return false }
            usleep(20_000)
        }
        return true
    }

    /// SIGTERM to the child's process group, then SIGKILL if it lingers.
    func terminate(grace: Duration = .seconds(5)) {
        guard isRunning else { return }
        kill(-pid, SIGTERM)
        if !wait(timeout: grace) {
            kill(-pid, SIGKILL)
            _ = wait(timeout: .seconds(5))
        }
    }

    deinit { terminate(grace: .seconds(1)) }
}

/// A ninepd process started for one test, stopped with SIGTERM.
final class NinepdProcess {
    let child: Spawned
    let port: UInt16
    let log: URL

    /// `descriptorLimit` runs ninepd under a lower RLIMIT_NOFILE (soft and hard).
    init(export: URL, extraArguments: [String] = [], logDirectory: URL, descriptorLimit: Int? = nil) throws {
        port = try freeLoopbackPort()
        log = logDirectory.appendingPathComponent("ninepd.log")
        let arguments = ["--export", export.path, "--listen", "tcp:127.0.0.1:\(port)"] + extraArguments
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
