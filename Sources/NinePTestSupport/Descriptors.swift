import Glibc
import Testing

// Descriptor accounting for tests that must leave nothing behind. The server runs in the test
// process, and other tests (other servers) run in parallel in it, so a bare count of
// /proc/self/fd moves for reasons of its own: `serverDescriptors` counts only what can be pinned
// on one server — descriptors naming a path inside its export (O_PATH fids, open files, FIFOs,
// the dup'd descriptors requests wait on) and its sockets (the socketpair ends it serves, its
// listener and the connections it accepted).

/// What descriptor `fd` of this process points to (readlink of /proc/self/fd/N).
public func descriptorTarget(_ fd: Int32) -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
    guard n >= 0 else { return nil }  // closed meanwhile
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Every open descriptor of this process and what it points to.
public func processDescriptors() -> [Int32: String] {
    var result: [Int32: String] = [:]
    guard let dir = opendir("/proc/self/fd") else { return result }
    let own = dirfd(dir)
    var fds: [Int32] = []
    while let entry = Glibc.readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if let fd = Int32(name), fd != own { fds.append(fd) }
    }
    closedir(dir)
    for fd in fds { result[fd] = descriptorTarget(fd) }
    return result
}

/// The number of entries in /proc/self/fd (for information: other tests move it too).
public func processDescriptorCount() -> Int { processDescriptors().count }

/// Socket inodes of TCP sockets whose local port is `port` (listening or accepted).
public func tcpSocketInodes(localPort port: UInt16) -> Set<String> {
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

/// Descriptors of this process that belong to `server`: paths in its export, its sockets.
public func serverDescriptors(_ server: TestServer) -> [Int32: String] {
    let prefix = server.path
    return processDescriptors().filter { _, target in
        target == prefix || target.hasPrefix(prefix + "/") || (target.hasPrefix("socket:") && server.ownsSocket(target))
    }
}

private func histogram(_ descriptors: [Int32: String]) -> [String: Int] {
    var counts: [String: Int] = [:]
    for target in descriptors.values { counts[target, default: 0] += 1 }
    return counts
}

/// Waits (up to `limit`) until the server's descriptors are back to `baseline` (same targets,
/// same counts); records an issue naming what is left (or gone) when they are not.
@discardableResult
public func expectDescriptorsBack(
    to baseline: [Int32: String], of server: TestServer, within limit: Duration = .seconds(3), _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    let want = histogram(baseline)
    var now: [Int32: String] = [:]
    if waitUntil(within: limit, pollingEvery: .milliseconds(20), {
        now = serverDescriptors(server)
        return histogram(now) == want
    }) { return true }
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
public func waitForConnectionCount(_ server: TestServer, _ count: Int, within limit: Duration = .seconds(3)) -> Bool {
    waitUntil(within: limit, pollingEvery: .milliseconds(10)) { server.server.connectionCount == count }
}

/// Ends `c`'s session the orderly way (Tclunk of each of `fids`, then close) and expects the
/// server to let the connection go and hold no descriptor more than `baseline`.
public func expectCleanEnd(
    of c: WireClient, clunking fids: [UInt32], _ server: TestServer, baseline: [Int32: String], _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    for fid in fids { try c.clunk(fid) }
    c.close()
    #expect(waitForConnectionCount(server, 0), "\(what): the server still counts the connection", sourceLocation: sourceLocation)
    expectDescriptorsBack(to: baseline, of: server, what, sourceLocation: sourceLocation)
}
