import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// Hostile and dead peers (--client-timeout): one that sends part of a message and stops, or
/// that takes none of its replies, for longer than the timeout is disconnected, its fids
/// clunked and their descriptors closed. An idle client, or one whose request waits on the
/// outside world, is never dropped: the kernel client keeps a mount idle for days.
///
/// The timeout here is 1 s; the tests allow 15 s for the disconnection (a loaded machine) and
/// check that it did not come before the timeout.
@Suite struct ClientTimeoutTests {
    static let timeoutMilliseconds = 1000

    private func server() throws -> TestServer {
        let s = try TestServer {
            $0.maxMessageSize = 1 << 20
            $0.largeBuffers = 8
            $0.clientTimeoutMilliseconds = Self.timeoutMilliseconds
        }
        makeFile(s("big.bin"), pseudoRandomBytes((1 << 20) - 4096, seed: 3))
        return s
    }

    /// A session with a few fids, one of them open (a descriptor more on the server).
    private func sessionWithFids(_ s: TestServer, receiveBufferBytes: Int32? = nil) throws -> WireClient {
        let c = try s.client(timeoutSeconds: 5, receiveBufferBytes: receiveBufferBytes)
        _ = try c.version(msize: 1 << 20)
        try c.attach(fid: 0)
        try c.walk(0, 1, ["big.bin"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        try c.walk(0, 2, ["big.bin"])
        try c.walk(0, 3, [])
        return c
    }

    /// Waits for the server to end the session: the client sees the end of the stream.
    /// Returns how long it took from `since`, or nil after 15 s.
    private func waitForDisconnection(_ c: WireClient, since start: ContinuousClock.Instant) -> Duration? {
        let clock = ContinuousClock()
        var scratch = [UInt8](repeating: 0, count: 65536)
        while clock.now - start < .seconds(15) {
            guard c.pollReadable(milliseconds: 100) else { continue }
            let n = scratch.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { return clock.now - start }
        }
        return nil
    }

    private func expectDisconnected(_ c: WireClient, _ s: TestServer, since start: ContinuousClock.Instant, baseline: [Int32: String], _ what: String) {
        guard let took = waitForDisconnection(c, since: start) else {
            Issue.record("\(what): still connected 15 s later (timeout \(Self.timeoutMilliseconds) ms)")
            return
        }
        #expect(took >= .milliseconds(Self.timeoutMilliseconds - 50), "\(what): disconnected after \(ms(took)), before the timeout")
        #expect(waitForConnectionCount(s, 0, within: .seconds(5)), "\(what): the server still counts the connection")
        expectDescriptorsBack(to: baseline, of: s, within: .seconds(5), "\(what)")
        print("client timeout: \(what): disconnected after \(ms(took))")
    }

    @Test(.timeLimit(.minutes(1)))
    func aPeerThatStopsInsideAHeaderIsDisconnected() throws {
        let s = try server()
        defer { s.shutdown() }
        let baseline = serverDescriptors(s)
        let c = try sessionWithFids(s)
        defer { c.close() }
        #expect(sendRaw(c.fd, [0x20, 0x00, 0x00]))  // 3 of a header's 7 bytes
        expectDisconnected(c, s, since: ContinuousClock().now, baseline: baseline, "3 bytes of a header")
    }

    @Test(.timeLimit(.minutes(1)))
    func aPeerThatStopsInsideABodyIsDisconnected() throws {
        let s = try server()
        defer { s.shutdown() }
        let baseline = serverDescriptors(s)
        let c = try sessionWithFids(s)
        defer { c.close() }
        // A Twrite announcing 4096 bytes of data, of which 20 come.
        let header = frame(type: MessageType.twrite.rawValue, tag: 9, body: le32(1) + le64(0) + le32(4096) + [UInt8](repeating: 1, count: 20), size: 7 + 16 + 4096)
        #expect(sendRaw(c.fd, header))
        expectDisconnected(c, s, since: ContinuousClock().now, baseline: baseline, "part of a Twrite body")
    }

    @Test(.timeLimit(.minutes(1)))
    func aPeerThatTakesNoneOfItsRepliesIsDisconnected() throws {
        let s = try server()
        defer { s.shutdown() }
        let baseline = serverDescriptors(s)
        let c = try sessionWithFids(s, receiveBufferBytes: 4096)
        defer { c.close() }
        var bytes: [UInt8] = []
        for _ in 0..<16 { bytes += c.encoded(.read(fid: 1, offset: 0, count: (1 << 20) - 11), tag: c.freshTag()) }
        let start = ContinuousClock().now
        #expect(sendRaw(c.fd, bytes))
        // The client reads nothing until the server gives up on it: then it sees the end
        // after whatever the server had already written.
        #expect(waitForConnectionCount(s, 0, within: .seconds(15)), "a peer that reads nothing is still connected 15 s later")
        let took = ContinuousClock().now - start
        #expect(took >= .milliseconds(Self.timeoutMilliseconds - 50), "disconnected after \(ms(took)), before the timeout")
        expectDescriptorsBack(to: baseline, of: s, within: .seconds(5), "unread replies")
        print("client timeout: 16 unread 1 MiB replies: disconnected after \(ms(took))")
    }

    /// Idle for three timeouts, then a request; and a request that waits on an empty FIFO
    /// for three timeouts, then a Tflush: neither is a stalled peer.
    @Test(.timeLimit(.minutes(1)))
    func idleConnectionsAndRequestsWaitingOnTheWorldSurvive() throws {
        let s = try server()
        defer { s.shutdown() }
        precondition(mkfifo(s("fifo"), 0o666) == 0)
        let c = try sessionWithFids(s)
        defer { c.close() }
        usleep(UInt32(3 * Self.timeoutMilliseconds * 1000))
        #expect(try c.getattr(2).size == UInt64((1 << 20) - 4096), "an idle connection did not survive three timeouts")

        try c.walk(0, 4, ["fifo"])
        _ = try c.lopen(4, OpenFlags.readWrite)
        let readTag = c.freshTag()
        #expect(c.send(.read(fid: 4, offset: 0, count: 100), tag: readTag))
        usleep(UInt32(3 * Self.timeoutMilliseconds * 1000))
        let flushTag = c.freshTag()
        #expect(c.send(.flush(oldtag: readTag), tag: flushTag))
        guard case let .message(m) = c.receive() else {
            Issue.record("no Rflush after a FIFO read waited three timeouts: the connection was dropped")
            return
        }
        #expect(m.tag == flushTag && m.response == .flush, "got \(m.response.type) for tag \(m.tag)")
        #expect(s.server.connectionCount == 1)
    }
}
