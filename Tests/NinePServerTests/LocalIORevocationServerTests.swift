import Glibc
import NinePTestSupport
import NinePWire
import Testing

@_spi(Benchmarks) @testable import NinePServer

/// localio's revocation long-poll on the wire (docs/LOCALIO.md): a Tlocalrevoke waits without
/// an answer until grants are revoked, is answered with exactly the revoked fids, is flushed
/// like any request, and does not stall the session's other requests.
@Suite struct LocalIORevocationServerTests {
    /// A proven session with `count` files created and granted as fids 1...count.
    static func grantedSession(_ s: TestServer, files count: UInt32) throws -> (WireClient, [Int32]) {
        let c = try s.client()
        try LocalIOServerTests.provenSession(c)
        var fds: [Int32] = []
        for fid in 1...count {
            _ = try c.walk(0, fid, [])
            _ = try c.lcreate(fid, "f\(fid).dat", flags: OpenFlags.readWrite)
            fds.append(try LocalIOServerTests.grant(c, fid).fd)
        }
        return (c, fds)
    }

    @Test func anOutstandingPollIsAnsweredWithTheRevokedFidsOnly() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let (c, fds) = try Self.grantedSession(s, files: 3)
        defer { for fd in fds { close(fd) } }
        let poll = c.freshTag()
        #expect(c.send(.localrevoke, tag: poll))
        // Still waiting: other requests are served meanwhile (it holds no worker).
        c.setTimeout(seconds: 0, milliseconds: 300)
        guard case .timeout = c.receive() else {
            Issue.record("Tlocalrevoke answered before any revocation")
            return
        }
        c.setTimeout(seconds: 10)
        for _ in 0..<20 { _ = try c.getattr(0) }
        #expect(s.server.revokeLocalGrants(fids: [2, 99]) == 1, "fid 99 holds no grant")
        guard case let .localrevoke(fids) = try c.reply(tag: poll) else {
            Issue.record("not Rlocalrevoke")
            return
        }
        #expect(Array(fids) == [2])
        // Fid 1 is clunked: its grant is gone with it, so revoking everything names only fid 3.
        try c.clunk(1)
        #expect(s.server.revokeLocalGrants() == 1)
        guard case let .localrevoke(rest) = try c.rpc(.localrevoke) else {
            Issue.record("a poll sent after the revocation was not answered at once")
            return
        }
        #expect(Array(rest) == [3])
    }

    @Test func aFlushedPollGetsOnlyRflushAndALaterPollStillWorks() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let (c, fds) = try Self.grantedSession(s, files: 1)
        defer { for fd in fds { close(fd) } }
        let poll = c.freshTag()
        #expect(c.send(.localrevoke, tag: poll))
        _ = try c.getattr(0)  // the poll has been taken in and parked by now
        let flush = c.freshTag()
        #expect(c.send(.flush(oldtag: poll), tag: flush))
        guard case .flush = try c.reply(tag: flush) else {
            Issue.record("not Rflush")
            return
        }
        // No Rlocalrevoke for the flushed tag follows: the next reply is the getattr's.
        _ = try c.getattr(0)
        // A revocation now waits for the next poll.
        #expect(s.server.revokeLocalGrants() == 1)
        guard case let .localrevoke(fids) = try c.rpc(.localrevoke) else {
            Issue.record("not Rlocalrevoke")
            return
        }
        #expect(Array(fids) == [1])
    }

    @Test func aSecondPollIsRefusedAndShutdownAnswersTheFirst() throws {
        let s = try TestServer()
        let (c, fds) = try Self.grantedSession(s, files: 2)
        defer { for fd in fds { close(fd) } }
        let poll = c.freshTag()
        #expect(c.send(.localrevoke, tag: poll))
        _ = try c.getattr(0)
        #expect(errnoOf { try c.rpc(.localrevoke) } == LinuxErrno.EBUSY)
        // Shutting down revokes every grant before the connection ends; the answer waits in
        // the socket for the client to read it.
        s.shutdown()
        guard case let .localrevoke(fids) = try c.reply(tag: poll) else {
            Issue.record("not Rlocalrevoke")
            return
        }
        #expect(Array(fids).sorted() == [1, 2])
    }

    @Test func aSessionWithoutLocalIOCannotPoll() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.client()
        _ = try c.version()
        try c.attach(fid: 0)
        #expect(errnoOf { try c.rpc(.localrevoke) } == LinuxErrno.EOPNOTSUPP)
    }
}
