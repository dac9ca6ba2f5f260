import Glibc
import NinePWire
import Testing

// Descriptor accounting for tests that must leave nothing behind. The server runs in the test
// process, and other tests (other servers) run in parallel in it, so a bare count of
// /proc/self/fd moves for reasons of its own: `serverDescriptors` counts only what can be pinned
// on one server — descriptors naming a path inside its export (O_PATH fids, open files, FIFOs,
// the dup'd descriptors requests wait on) and TCP sockets whose local port is its port (its
// listener and the connections it accepted).

/// Every open descriptor of this process and what it points to (readlink of /proc/self/fd/N).
func processDescriptors() -> [Int32: String] {
    var result: [Int32: String] = [:]
    guard let dir = opendir("/proc/self/fd") else { return result }
    let own = dirfd(dir)
    var names: [String] = []
    while let entry = Glibc.readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        names.append(name)
    }
    closedir(dir)
    var buffer = [CChar](repeating: 0, count: 4096)
    for name in names {
        guard let fd = Int32(name), fd != own else { continue }
        let n = readlink("/proc/self/fd/\(name)", &buffer, buffer.count - 1)
        guard n >= 0 else { continue }  // closed meanwhile
        result[fd] = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    return result
}

/// The number of entries in /proc/self/fd (for information: other tests move it too).
func processDescriptorCount() -> Int { processDescriptors().count }

/// Socket inodes of TCP sockets whose local port is `port` (listening or accepted).
func tcpSocketInodes(localPort port: UInt16) -> Set<String> {
    var inodes: Set<String> = []
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        guard let text = readTextFile(table) else { continue }
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9 else { continue }
            let local = fields[1]
            guard let colon = local.lastIndex(of: ":"), let localPort = UInt16(local[local.index(after: colon)...], radix: 16) else { continue }
            if localPort == port && fields[9] != "0" { inodes.insert("socket:[\(fields[9])]") }
        }
    }
    return inodes
}

func readTextFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { Glibc.close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Descriptors of this process that belong to `server`: paths in its export, its TCP sockets.
func serverDescriptors(_ server: TestServer) -> [Int32: String] {
    let sockets = tcpSocketInodes(localPort: server.port)
    let prefix = server.path
    return processDescriptors().filter { _, target in
        target == prefix || target.hasPrefix(prefix + "/") || sockets.contains(target)
    }
}

/// A readable summary of descriptors: "target ×count" lines, sorted.
func describeDescriptors(_ descriptors: [Int32: String]) -> String {
    var counts: [String: Int] = [:]
    for target in descriptors.values { counts[target, default: 0] += 1 }
    return counts.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
}

/// Waits (up to `limit`) until the server's descriptors are back to `baseline` (same targets,
/// same counts); records an issue naming what is left (or gone) when they are not.
@discardableResult
func expectDescriptorsBack(
    to baseline: [Int32: String], of server: TestServer, within limit: Duration = .seconds(3), _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    func histogram(_ d: [Int32: String]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for target in d.values { counts[target, default: 0] += 1 }
        return counts
    }
    let want = histogram(baseline)
    let clock = ContinuousClock()
    let start = clock.now
    var now: [Int32: String] = [:]
    repeat {
        now = serverDescriptors(server)
        if histogram(now) == want { return true }
        usleep(20_000)
    } while clock.now - start < limit
    let have = histogram(now)
    var extra: [String] = []
    var missing: [String] = []
    for (target, count) in have where count > want[target, default: 0] { extra.append("\(target) +\(count - want[target, default: 0])") }
    for (target, count) in want where count > have[target, default: 0] { missing.append("\(target) -\(count - have[target, default: 0])") }
    Issue.record(
        "\(what): the server's descriptors did not return to baseline within \(limit) (\(baseline.count) before, \(now.count) now); left open: [\(extra.sorted().joined(separator: ", "))]; gone: [\(missing.sorted().joined(separator: ", "))]",
        sourceLocation: sourceLocation)
    return false
}

/// Waits (up to `limit`) until the server has `count` connections.
func waitForConnectionCount(_ server: TestServer, _ count: Int, within limit: Duration = .seconds(3)) -> Bool {
    let clock = ContinuousClock()
    let start = clock.now
    while clock.now - start < limit {
        if server.server.connectionCount == count { return true }
        usleep(10_000)
    }
    return server.server.connectionCount == count
}

/// SplitMix64: a small seeded generator, so a failing run can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Milliseconds of a duration, for messages.
func ms(_ d: Duration) -> String {
    let (seconds, attoseconds) = d.components
    let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    if micros < 10_000 {
        let hundredths = (micros + 5) / 10
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction) ms"
    }
    return "\((micros + 500) / 1000) ms"
}
