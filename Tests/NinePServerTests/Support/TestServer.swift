import Glibc
import Logging
import NinePServer
import NinePTransport
import NinePWire
import Synchronization
import Testing

/// A temporary directory under /tmp (mkdtemp), removed with everything in it.
final class TempDirectory {
    let path: String

    init(prefix: String = "ninep-server-test") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ClientError.unexpected("mkdtemp failed: errno \(errno)")
        }
        path = String(cString: made)
    }

    func callAsFunction(_ relative: String) -> String { "\(path)/\(relative)" }

    func remove() { removeTree(path) }

    deinit { remove() }
}

/// `rm -rf` without following symlinks.
func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if UInt32(st.st_mode) & Mode.typeMask == Mode.directory {
        if let dir = opendir(path) {
            var names: [String] = []
            while let entry = Glibc.readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(dir)
            for name in names { removeTree("\(path)/\(name)") }
        }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// An atomic flag shared with a thread that may outlive the waiter.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// A server started in this process on 127.0.0.1 (an ephemeral port) exporting its own
/// temporary directory. Shut down explicitly (or when released).
final class TestServer {
    let export: TempDirectory
    let server: Server
    let port: UInt16
    private var stopped = false

    /// `configure` adjusts the configuration before the server starts. Tests use few
    /// workers and few large buffers: they are light, and many servers run at once.
    init(_ configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        export = try TempDirectory()
        var configuration = ServerConfiguration(exportPath: export.path, listen: [.tcp(host: "127.0.0.1", port: 0)])
        configuration.workerThreads = 4
        configuration.largeBuffers = 8
        configure(&configuration)
        var logger = Logger(label: "ninepd-test")
        logger.logLevel = .critical
        server = try Server(configuration: configuration, logger: logger)
        server.start()
        guard let tcp = server.boundAddresses.first(where: { if case .tcp = $0 { true } else { false } }),
              case let .tcp(_, port) = tcp else {
            throw ClientError.unexpected("no TCP address bound")
        }
        self.port = port
    }

    deinit { shutdown() }

    var path: String { export.path }
    func callAsFunction(_ relative: String) -> String { export(relative) }

    /// A connected client that has not sent anything yet.
    func client(timeoutSeconds: Int = 5) throws -> RawClient {
        try RawClient(port: port, timeoutSeconds: timeoutSeconds)
    }

    /// A client after Tversion and Tattach of fid 0 (as root unless `uid` says otherwise).
    func session(uid: UInt32 = 0, msize: UInt32 = 256 * 1024) throws -> RawClient {
        let c = try client()
        try c.version(msize: msize)
        try c.attach(fid: 0, nuname: uid)
        return c
    }

    /// Shuts the server down, waiting at most 10 s (a hung shutdown is an issue, not a hang).
    func shutdown() {
        if shutdown(within: .seconds(10)) == nil {
            Issue.record("server shutdown did not finish within 10 s")
        }
    }

    /// Shuts the server down on another thread; how long it took, or nil when it did not
    /// finish within `limit` (the shutdown thread is then left behind).
    @discardableResult
    func shutdown(within limit: Duration) -> Duration? {
        guard !stopped else { return .zero }
        stopped = true
        let done = Flag()
        let server = self.server
        let clock = ContinuousClock()
        let start = clock.now
        DaemonThread.start(name: "test-shutdown") {
            server.shutdown()
            done.set()
        }
        while clock.now - start < limit {
            if done.isSet { return clock.now - start }
            usleep(1000)
        }
        return nil
    }
}

// MARK: - The real file system, as the test sees it

func makeFile(_ path: String, _ bytes: [UInt8] = [], mode: mode_t = 0o644) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    precondition(fd >= 0, "cannot create \(path): errno \(errno)")
    _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    fchmod(fd, mode)
    Glibc.close(fd)
}

func makeDirectory(_ path: String, mode: mode_t = 0o755) {
    precondition(Glibc.mkdir(path, mode) == 0, "cannot mkdir \(path): errno \(errno)")
}

func fileBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { Glibc.close(fd) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        result += chunk[0..<n]
    }
    return result
}

func lstatOf(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

func exists(_ path: String) -> Bool { lstatOf(path) != nil }

/// Deterministic pseudo-random bytes (SplitMix64), so failures reproduce.
func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var out = [UInt8]()
    out.reserveCapacity(count)
    while out.count < count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        for shift in stride(from: 0, to: 64, by: 8) where out.count < count {
            out.append(UInt8(truncatingIfNeeded: z >> UInt64(shift)))
        }
    }
    return out
}

/// FNV-1a, a checksum to compare payloads by.
func checksum(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    return hash
}

/// Little-endian frame building for hand-made (malformed) messages.
func le16(_ v: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }
func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> ($0 * 8)) } }
func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> UInt64($0 * 8)) } }

/// A frame: size[4] type[1] tag[2] body, with the size computed (or given, to lie).
func frame(type: UInt8, tag: UInt16, body: [UInt8], size: Int? = nil) -> [UInt8] {
    le32(size ?? (7 + body.count)) + [type] + le16(Int(tag)) + body
}

func wireString(_ s: String) -> [UInt8] { le16(s.utf8.count) + Array(s.utf8) }

/// Linux file-type bits, spelled out (the C macros are ambiguous between Glibc and the shim).
enum Mode {
    static let typeMask: UInt32 = 0o170000
    static let directory: UInt32 = 0o040000
    static let regular: UInt32 = 0o100000
    static let symlink: UInt32 = 0o120000
    static let fifo: UInt32 = 0o010000
}

let AT_REMOVEDIR_9P = UnlinkFlags.removeDir
