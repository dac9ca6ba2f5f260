import Glibc

// Child processes and loopback ports, for the tests that run real programs (diod, ninepd, the
// ninep command, a kernel in user-mode-linux) next to the test process.

/// A test step that could not be carried out.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A child process started with posix_spawn with a clean signal mask and default signal
/// handlers, in a process group of its own: the test runner's threads block signals (SIGTERM
/// among them), and a mask is inherited across exec, which would leave children unable to be
/// stopped politely. Its output (stdout and stderr) is appended to `output`. `descriptors`
/// hands the child open descriptors at chosen numbers (socket activation passes listeners as
/// 3, 4, ...): each `from` (close-on-exec in the parent, so no other child inherits it) is
/// duplicated onto `to`, which must differ from it.
public final class Spawned {
    public let pid: pid_t
    public private(set) var status: Int32? = nil

    public init(_ executable: String, _ arguments: [String], output: String, descriptors: [(from: Int32, to: Int32)] = []) throws {
        precondition(descriptors.allSatisfy { $0.from != $0.to && $0.to > 2 }, "dup2 onto itself keeps close-on-exec; duplicate the descriptor first")
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
        for (from, to) in descriptors { posix_spawn_file_actions_adddup2(&actions, from, to) }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child = pid_t()
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw TestFailure("cannot start \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    /// Reaps the child if it has exited; true while it runs.
    public var isRunning: Bool {
        if status != nil { return false }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid {
            status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            return false
        }
        return true
    }

    /// Waits up to `timeout`; true if it exited.
    public func wait(timeout: Duration) -> Bool {
        waitUntil(within: timeout, pollingEvery: .milliseconds(20)) { !isRunning }
    }

    /// SIGTERM to the child's process group, then SIGKILL if it lingers.
    public func terminate(grace: Duration = .seconds(5)) {
        guard isRunning else { return }
        kill(-pid, SIGTERM)
        if !wait(timeout: grace) {
            kill(-pid, SIGKILL)
            _ = wait(timeout: .seconds(5))
        }
    }

    deinit { terminate(grace: .seconds(1)) }
}

/// 127.0.0.1:`port` as a sockaddr_in.
private func loopback(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = port.bigEndian
    return address
}

/// A port that was free a moment ago on 127.0.0.1.
public func freeLoopbackPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = loopback(port: 0)
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

/// True once something accepts TCP connections on 127.0.0.1:port (within `timeout`).
public func waitForListener(port: UInt16, timeout: Duration = .seconds(10)) -> Bool {
    waitUntil(within: timeout, pollingEvery: .milliseconds(50)) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// Debian's diod exporting `export` on a free loopback port, stopped when released. It runs in
/// `workDirectory`: diod 1.0.24 sometimes crashes when stopped while a connection closes, and
/// it raises its own core limit, so the core lands there.
public final class DiodProcess {
    public let export: String
    public let port: UInt16
    private let child: Spawned

    public init(export: String, workDirectory: String, log: String = "/dev/null") throws {
        self.export = export
        port = try freeLoopbackPort()
        child = try Spawned(
            "/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", workDirectory, "/usr/sbin/diod", "-f", "-n", "-e", export, "-l", "127.0.0.1:\(port)", "-L", "stderr"],
            output: log)
        guard waitForListener(port: port) else {
            child.terminate()
            throw TestFailure("diod did not listen on \(port)")
        }
    }

    public var address: String { "tcp:127.0.0.1:\(port)" }

    public func stop() { child.terminate() }

    deinit { stop() }
}
