import CNinePShims
import Glibc
import MetricsTestKit
import NinePTestSupport
import NinePWire
import Testing

@_spi(Benchmarks) @testable import NinePServer

/// localio on the server (docs/LOCALIO.md), over real unix sockets (socketpairs, and TCP for
/// the refusal): negotiation, the sealed nonce memfd, the proof, and every rule of a grant.
@Suite struct LocalIOServerTests {
    static let extended = "\(NineP.versionLocalIO)"

    /// Tversion with the extension; the memfd that came with Rversion (nil when none came).
    static func negotiate(_ c: WireClient) throws -> (version: String, memfd: Int32?) {
        let (_, version) = try c.version(version: extended)
        return (version, c.descriptors.take())
    }

    /// A session that negotiated localio, proved locality and attached fid 0 as `uid`.
    static func provenSession(_ c: WireClient, uid: UInt32 = 0) throws {
        let (version, memfd) = try negotiate(c)
        #expect(version == extended)
        let fd = try #require(memfd)
        defer { close(fd) }
        let nonce = try #require(readNonceMemfd(fd))
        guard case .localproof = try c.rpc(.localproof(nonce: LocalNonce(c.view(nonce)))) else { throw WireClientError.unexpected("not Rlocalproof") }
        try c.attach(fid: 0, nuname: uid)
    }

    /// Tlocalgrant of `fid`: the descriptor and the flags, or the Rlerror errno.
    static func grant(_ c: WireClient, _ fid: UInt32) throws -> (fd: Int32, flags: UInt32) {
        guard case let .localgrant(flags) = try c.rpc(.localgrant(fid: fid)) else { throw WireClientError.unexpected("not Rlocalgrant") }
        guard let fd = c.descriptors.take() else { throw WireClientError.unexpected("Rlocalgrant without a descriptor") }
        #expect(c.descriptors.count == 0, "one descriptor per grant")
        return (fd, flags)
    }

    static func write(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw WireClientError.unexpected("open \(path): errno \(errno)") }
        defer { close(fd) }
        #expect(bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count)
    }

    @Test func aUnixSocketNegotiatesTheExtensionWithASealedNonce() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.client()
        let (version, memfd) = try Self.negotiate(c)
        #expect(version == Self.extended)
        let fd = try #require(memfd)
        defer { close(fd) }
        let nonce = try #require(readNonceMemfd(fd), "a sealed memfd of 32 bytes")
        #expect(nonce != [UInt8](repeating: 0, count: 32))
        // Sealed against writes: even the receiver cannot change the nonce.
        #expect(nonce.withUnsafeBytes { pwrite(fd, $0.baseAddress, 1, 0) } == -1)
        guard case .localproof = try c.rpc(.localproof(nonce: LocalNonce(c.view(nonce)))) else {
            Issue.record("the proof was not accepted")
            return
        }
        // A second Tversion starts over with a new nonce: the first one no longer proves anything.
        let (_, second) = try Self.negotiate(c)
        let secondFd = try #require(second)
        defer { close(secondFd) }
        let fresh = try #require(readNonceMemfd(secondFd))
        #expect(fresh != nonce)
        #expect(errnoOf { try c.rpc(.localproof(nonce: LocalNonce(c.view(nonce)))) } == LinuxErrno.EACCES)
    }

    @Test func plain9P2000LGetsNoDescriptorAndNoLocalMessages() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.client()
        let (_, version) = try c.version()
        #expect(version == "9P2000.L")
        #expect(c.descriptors.count == 0)
        #expect(errnoOf { try c.rpc(.localproof(nonce: LocalNonce(c.view([UInt8](repeating: 1, count: 32))))) } == LinuxErrno.EOPNOTSUPP)
        try c.attach(fid: 0)
        #expect(errnoOf { try c.rpc(.localgrant(fid: 0)) } == LinuxErrno.EOPNOTSUPP)
    }

    @Test func tcpAnswersPlain9P2000L() throws {
        let s = try TestServer(transport: .tcp)
        defer { s.shutdown() }
        let c = try WireClient(port: try #require(s.port))
        let (version, memfd) = try Self.negotiate(c)
        #expect(version == "9P2000.L")
        #expect(memfd == nil)
        #expect(errnoOf { try c.rpc(.localproof(nonce: LocalNonce(c.view([UInt8](repeating: 0, count: 32))))) } == LinuxErrno.EOPNOTSUPP)
    }

    @Test func aForgedNonceOrAnotherSessionsNonceGetsNoGrant() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try Self.write(s("data"), [1, 2, 3])
        let a = try s.client()
        let b = try s.client()
        let (_, memfdA) = try Self.negotiate(a)
        let (_, memfdB) = try Self.negotiate(b)
        let fdA = try #require(memfdA)
        let fdB = try #require(memfdB)
        defer { close(fdA); close(fdB) }
        let nonceA = try #require(readNonceMemfd(fdA))
        var forged = try #require(readNonceMemfd(fdB))
        forged[31] ^= 1
        // B presents A's nonce, then a nonce one bit off its own: both refused.
        #expect(errnoOf { try b.rpc(.localproof(nonce: LocalNonce(b.view(nonceA)))) } == LinuxErrno.EACCES)
        #expect(errnoOf { try b.rpc(.localproof(nonce: LocalNonce(b.view(forged)))) } == LinuxErrno.EACCES)
        try b.attach(fid: 0)
        _ = try b.walk(0, 1, ["data"])
        _ = try b.lopen(1, OpenFlags.readOnly)
        #expect(errnoOf { try b.rpc(.localgrant(fid: 1)) } == LinuxErrno.EACCES)
        #expect(b.descriptors.count == 0)
        // A's own nonce still proves A.
        guard case .localproof = try a.rpc(.localproof(nonce: LocalNonce(a.view(nonceA)))) else {
            Issue.record("A's proof refused")
            return
        }
    }

    @Test func aPeerWithOtherCredentialsGetsNoGrant() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try Self.write(s("data"), [9, 9, 9])
        // The socket's SO_PEERCRED names uid 65534; the session attaches as root.
        let (client, serverEnd) = try makeSocketPair(asUser: 65534)
        try s.server.serve(connectedSocket: serverEnd, peer: "other-user")
        let c = WireClient(connectedSocket: client)
        try Self.provenSession(c, uid: 0)
        _ = try c.walk(0, 1, ["data"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        #expect(errnoOf { try c.rpc(.localgrant(fid: 1)) } == LinuxErrno.EPERM)
        #expect(c.descriptors.count == 0)
        // The same user attaching as itself is that user: a grant (then the file's own
        // permissions decide; 0644 allows reading, once the export lets nobody in).
        #expect(chmod(s.path, 0o755) == 0)
        let (client2, serverEnd2) = try makeSocketPair(asUser: 65534)
        try s.server.serve(connectedSocket: serverEnd2, peer: "nobody")
        let d = WireClient(connectedSocket: client2)
        try Self.provenSession(d, uid: 65534)
        _ = try d.walk(0, 1, ["data"])
        _ = try d.lopen(1, OpenFlags.readOnly)
        let granted = try Self.grant(d, 1)
        defer { close(granted.fd) }
        var bytes = [UInt8](repeating: 0, count: 8)
        #expect(bytes.withUnsafeMutableBytes { pread(granted.fd, $0.baseAddress, 8, 0) } == 3)
        #expect(Array(bytes[0..<3]) == [9, 9, 9])
    }

    @Test func aReadOnlyGrantCannotWrite() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let content = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Self.write(s("data"), content)
        let c = try s.client()
        try Self.provenSession(c)
        _ = try c.walk(0, 1, ["data"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        let granted = try Self.grant(c, 1)
        defer { close(granted.fd) }
        #expect(granted.flags & OpenFlags.accessMode == OpenFlags.readOnly)
        #expect(fcntl(granted.fd, F_GETFL) & O_ACCMODE == O_RDONLY)
        #expect(fcntl(granted.fd, F_GETFD) & FD_CLOEXEC != 0)
        var bytes = [UInt8](repeating: 0, count: 6000)
        #expect(bytes.withUnsafeMutableBytes { pread(granted.fd, $0.baseAddress, 6000, 0) } == 5000)
        #expect(Array(bytes[0..<5000]) == content)
        errno = 0
        #expect(bytes.withUnsafeBytes { pwrite(granted.fd, $0.baseAddress, 10, 0) } == -1)
        #expect(errno == EBADF)
        // Its own open file description: its offset is not the server's.
        #expect(lseek(granted.fd, 100, SEEK_SET) == 100)
        #expect(try c.read(1, offset: 0, count: 10) == Array(content[0..<10]))
    }

    @Test func aReadWriteGrantWritesWhat9PReadsBack() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.client()
        try Self.provenSession(c)
        _ = try c.walk(0, 1, [])
        _ = try c.lcreate(1, "new.dat", flags: OpenFlags.readWrite)
        let granted = try Self.grant(c, 1)
        defer { close(granted.fd) }
        #expect(granted.flags & OpenFlags.accessMode == OpenFlags.readWrite)
        let payload = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        #expect(payload.withUnsafeBytes { pwrite(granted.fd, $0.baseAddress, $0.count, 10) } == payload.count)
        #expect(try c.read(1, offset: 10, count: 70_000) == payload)
        #expect(try c.read(1, offset: 0, count: 10) == [UInt8](repeating: 0, count: 10))
        // And what 9P writes, the grant reads.
        #expect(try c.write(1, offset: 5, [0xAB, 0xCD]) == 2)
        var two = [UInt8](repeating: 0, count: 2)
        #expect(two.withUnsafeMutableBytes { pread(granted.fd, $0.baseAddress, 2, 5) } == 2)
        #expect(two == [0xAB, 0xCD])
    }

    @Test func anAppendOnlyFidGivesAnAppendOnlyGrant() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try Self.write(s("log"), [1, 2, 3, 4])
        let c = try s.client()
        try Self.provenSession(c)
        _ = try c.walk(0, 1, ["log"])
        _ = try c.lopen(1, OpenFlags.writeOnly | OpenFlags.append)
        let granted = try Self.grant(c, 1)
        defer { close(granted.fd) }
        #expect(granted.flags & OpenFlags.append != 0)
        #expect(fcntl(granted.fd, F_GETFL) & O_APPEND != 0)
        // pwrite at 0 on an O_APPEND descriptor appends (Linux): nothing before the end changes.
        #expect([UInt8]([9]).withUnsafeBytes { pwrite(granted.fd, $0.baseAddress, 1, 0) } == 1)
        var all = [UInt8](repeating: 0, count: 8)
        let fd = open(s("log"), O_RDONLY)
        defer { close(fd) }
        #expect(all.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 8, 0) } == 5)
        #expect(Array(all[0..<5]) == [1, 2, 3, 4, 9])
    }

    @Test func onlyOpenRegularFilesAreGranted() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try Self.write(s("data"), [1])
        #expect(mkdir(s("dir"), 0o755) == 0)
        #expect(mkfifo(s("fifo"), 0o644) == 0)
        let c = try s.client()
        try Self.provenSession(c)
        // Walked but not opened; and a fid that does not exist.
        _ = try c.walk(0, 1, ["data"])
        #expect(errnoOf { try c.rpc(.localgrant(fid: 1)) } == LinuxErrno.EBADF)
        #expect(errnoOf { try c.rpc(.localgrant(fid: 77)) } == LinuxErrno.EBADF)
        // A directory, opened.
        _ = try c.walk(0, 2, ["dir"])
        _ = try c.lopen(2, OpenFlags.readOnly | OpenFlags.directory)
        #expect(errnoOf { try c.rpc(.localgrant(fid: 2)) } == LinuxErrno.EINVAL)
        // A FIFO, opened read-write (which does not wait for a peer).
        _ = try c.walk(0, 3, ["fifo"])
        _ = try c.lopen(3, OpenFlags.readWrite)
        #expect(errnoOf { try c.rpc(.localgrant(fid: 3)) } == LinuxErrno.EINVAL)
        #expect(c.descriptors.count == 0)
    }

    @Test func aReadOnlyExportOnAWritableFileSystemGrantsNothing() throws {
        let s = try TestServer { $0.readOnly = true }
        defer { s.shutdown() }
        try Self.write(s("data"), [5, 6])
        let c = try s.client()
        try Self.provenSession(c)
        _ = try c.walk(0, 1, ["data"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        // The temporary directory is on a read-write mount: a read-only descriptor would still
        // let the owner fchmod and fsetxattr, which the export forbids.
        #expect(errnoOf { try c.rpc(.localgrant(fid: 1)) } == LinuxErrno.EROFS)
        #expect(try c.read(1, offset: 0, count: 2) == [5, 6])
    }

    @Test func grantsAndProofsAreCounted() throws {
        let metrics = TestMetrics()
        let s = try TestServer(metrics: metrics)
        defer { s.shutdown() }
        try Self.write(s("data"), [1])
        let c = try s.client()
        let (_, memfd) = try Self.negotiate(c)
        let fd = try #require(memfd)
        defer { close(fd) }
        #expect(errnoOf { try c.rpc(.localproof(nonce: LocalNonce(c.view([UInt8](repeating: 0, count: 32))))) } == LinuxErrno.EACCES)
        try c.attach(fid: 0)
        _ = try c.walk(0, 1, ["data"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        #expect(errnoOf { try c.rpc(.localgrant(fid: 1)) } == LinuxErrno.EACCES)
        guard case .localproof = try c.rpc(.localproof(nonce: LocalNonce(c.view(try #require(readNonceMemfd(fd)))))) else {
            Issue.record("proof refused")
            return
        }
        let granted = try Self.grant(c, 1)
        close(granted.fd)
        #expect(errnoOf { try c.rpc(.localgrant(fid: 0)) } == LinuxErrno.EBADF)
        s.server.publishMetrics()
        func count(_ label: String, _ outcome: String) throws -> Int64 {
            try metrics.expectCounter(label, [("outcome", outcome)]).totalValue
        }
        #expect(try count("ninep_localio_proofs_total", "accepted") == 1)
        #expect(try count("ninep_localio_proofs_total", "refused") == 1)
        #expect(try count("ninep_localio_grants_total", "granted") == 1)
        #expect(try count("ninep_localio_grants_total", "unproven") == 1)
        #expect(try count("ninep_localio_grants_total", "not_open") == 1)
        #expect(try metrics.expectCounter("ninep_requests_total", [("type", "localgrant")]).totalValue == 3)
    }
}
