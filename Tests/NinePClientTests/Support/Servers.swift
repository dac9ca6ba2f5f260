import Glibc
import Logging
@testable import NinePClient
import NinePServer
import NinePTransport
import Synchronization
import Testing

/// A temporary directory under /tmp, removed (rm -rf) when released.
final class Scratch {
    let path: String

    init(_ prefix: String = "ninep-client-test") {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed: errno \(errno)")
        path = String(cString: made!)
    }

    func callAsFunction(_ relative: String) -> String { "\(path)/\(relative)" }

    deinit { _ = shell("rm -rf '\(path)'") }
}

/// Runs a shell command; its exit status.
@discardableResult
func shell(_ command: String) -> Int32 {
    let status = command.withCString { Glibc.system($0) }
    return (status >> 8) & 0xff
}

/// A 9P server for a test: ninepd's library in this process, or a diod process.
protocol TestPeer: AnyObject {
    var name: String { get }
    var address: String { get }
    /// The directory it exports, as the test sees it.
    var exportPath: String { get }
    /// The attach name the server wants.
    var aname: String { get }
    func stop()
}

extension TestPeer {
    func connect(msize: UInt32 = 256 * 1024, maxInFlight: Int = 32, callTimeout: Duration? = .seconds(20)) async throws -> NinePClient {
        let configuration = ClientConfiguration(
            address: try ListenAddress(parsing: address), uname: "root", aname: aname, uid: 0, msize: msize,
            maxInFlight: maxInFlight, callTimeout: callTimeout)
        return try await NinePClient.connect(configuration)
    }
}

/// ninepd (the NinePServer library) on 127.0.0.1, exporting its own scratch directory.
final class InProcessNinepd: TestPeer {
    let export = Scratch("ninep-client-export")
    let server: Server
    let port: UInt16
    var name: String { "ninepd" }
    var address: String { "tcp:127.0.0.1:\(port)" }
    var exportPath: String { export.path }
    var aname: String { "" }

    /// A unix socket it also listens on.
    var unixSocket: String { export.path + ".sock" }

    init() throws {
        var configuration = ServerConfiguration(exportPath: export.path, listen: [.tcp(host: "127.0.0.1", port: 0)])
        configuration.listen.append(.unix(path: export.path + ".sock"))
        configuration.workerThreads = 4
        var logger = Logger(label: "ninepd-client-test")
        logger.logLevel = getenv("NINEP_TEST_TRACE") != nil ? .trace : .critical
        server = try Server(configuration: configuration, logger: logger)
        server.start()
        guard case let .tcp(_, port)? = server.boundAddresses.first(where: { if case .tcp = $0 { true } else { false } }) else { throw TestError("no TCP address bound") }
        self.port = port
    }

    func stop() {
        server.shutdown()
        unlink(unixSocket)
    }
}

/// Debian's diod, started on a free loopback port and killed when stopped.
final class DiodProcess: TestPeer {
    let export = Scratch("ninep-client-diod")
    let workDirectory = Scratch("ninep-client-diod-cwd")
    let pid: pid_t
    let port: UInt16
    var name: String { "diod" }
    var address: String { "tcp:127.0.0.1:\(port)" }
    var exportPath: String { export.path }
    var aname: String { export.path }

    init() throws {
        port = try freePort()
        // Started in a scratch directory: diod 1.0.24 sometimes crashes when stopped while a
        // connection closes, and it raises its own core limit, so the core lands there.
        pid = try spawn(
            "/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", workDirectory.path, "/usr/sbin/diod", "-f", "-n", "-e", export.path, "-l", "127.0.0.1:\(port)", "-L", "stderr"],
            log: "/tmp/ninep-client-diod-\(port).log")
        guard waitForPort(port) else {
            stop()
            throw TestError("diod did not listen on \(port)")
        }
    }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
    }
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A loopback TCP port that was free a moment ago.
func freePort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestError("bind to port 0 failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return UInt16(bigEndian: address.sin_port)
}

/// True once 127.0.0.1:port accepts connections (at most 10 s).
func waitForPort(_ port: UInt16) -> Bool {
    for _ in 0..<200 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if rc == 0 { return true }
        usleep(50_000)
    }
    return false
}

/// posix_spawn with a clean signal mask (the test runner blocks signals, and a mask is
/// inherited across exec) and output to `log`.
func spawn(_ executable: String, _ arguments: [String], log: String, environment: [String]? = nil) throws -> pid_t {
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
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var child = pid_t()
    let rc: Int32
    if let environment {
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for pointer in envp { free(pointer) } }
        rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
    } else {
        rc = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
    }
    guard rc == 0 else { throw TestError("cannot start \(executable): \(String(cString: strerror(rc)))") }
    return child
}

/// The bytes of a local file.
func localBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        result += chunk[0..<n]
    }
    return result
}

func writeLocal(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    precondition(fd >= 0, "cannot create \(path): errno \(errno)")
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

/// Deterministic bytes (SplitMix64) so that failures reproduce.
func patternedBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var out = [UInt8]()
    out.reserveCapacity(count + 8)
    while out.count < count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: z >> UInt64(shift))) }
    }
    return Array(out.prefix(count))
}

/// A thread of its own for the tests that measure how fast a call returns: other suites run
/// blocking work on the shared cooperative pool (two threads on a two-core machine), which
/// would otherwise delay the test's own wake-ups, not the client's.
let timingExecutor = ClientExecutor(name: "test-timing")
