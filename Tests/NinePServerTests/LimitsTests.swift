import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// Limits on what one peer can hold, and pipelined requests.
@Suite struct LimitsTests {
    @Test func theFidAfterTheLimitIsEMFILE() throws {
        let s = try TestServer { $0.maxFidsPerConnection = 8 }
        defer { s.shutdown() }
        let c = try s.session()
        for fid in UInt32(1)...7 { try c.walk(0, fid, []) }
        #expect(errnoOf { try c.walk(0, 8, []) } == LinuxErrno.EMFILE)
        #expect(errnoOf { try c.walk(0, 8, [".."]) } == LinuxErrno.EMFILE)
        #expect(errnoOf { try c.attach(fid: 8) } == LinuxErrno.EMFILE)
        #expect(errnoOf { try c.xattrwalk(0, 8, "") } == LinuxErrno.EMFILE)
        // The eight fids keep working, and a clunk makes room.
        #expect(try c.getattr(7).qid.isDirectory)
        try c.clunk(7)
        try c.walk(0, 8, [])
        #expect(try c.getattr(8).qid.isDirectory)
        // The limit is per connection.
        let other = try s.session()
        for fid in UInt32(1)...7 { try other.walk(0, fid, []) }
        #expect(errnoOf { try other.walk(0, 8, []) } == LinuxErrno.EMFILE)
    }

    /// Accepted over TCP (the listener's accept loop closes the connection beyond the limit),
    /// and handed in on a socketpair (`serve(connectedSocket:)` refuses it): the same admission.
    @Test func aConnectionBeyondTheLimitIsClosedWhileTheOthersWork() throws {
        let s = try TestServer(transport: .tcp) { $0.maxConnections = 2 }
        defer { s.shutdown() }
        let port = try #require(s.port)
        let first = try s.session()
        let second = try WireClient(port: port)
        try second.version()
        try second.attach()
        let third = try WireClient(port: port, timeoutSeconds: 3)
        third.send(.version(msize: 8192, version: third.view("9P2000.L")), tag: NineP.noTag)
        let seen = third.waitForClose()
        #expect(seen != nil, "the third connection was not closed")
        #expect(seen?.isEmpty == true, "the third connection got a reply")
        #expect(throws: RefusedConnection.self, "a socketpair beyond the limit was served") { try s.client() }
        #expect(try first.getattr(0).qid.isDirectory)
        #expect(try second.getattr(0).qid.isDirectory)

        // Once one leaves, a new connection is served.
        first.close()
        let deadline = ContinuousClock.now + .seconds(3)
        var served = false
        while !served && ContinuousClock.now < deadline {
            let next = try WireClient(port: port, timeoutSeconds: 1)
            if (try? next.version()) != nil {
                try next.attach()
                served = try next.getattr(0).qid.isDirectory
            } else {
                usleep(20_000)
            }
        }
        #expect(served)
        #expect(try second.getattr(0).qid.isDirectory)
    }

    /// DESIGN.md: a request that waits for the outside world (a FIFO) must not hold what
    /// others need: more blocked FIFO reads than workers, and other connections are still
    /// served (blocked reads wait parked, without a worker).
    @Test func readsBlockedOnAFIFODoNotStarveOtherConnections() throws {
        let s = try TestServer { $0.workerThreads = 4 }
        defer { s.shutdown() }
        let c = try s.session()
        try c.mknod(0, "fifo", mode: Mode.fifo | 0o644)
        for i in UInt32(1)...4 {
            try c.walk(0, i, ["fifo"])
            try c.lopen(i, OpenFlags.readWrite)
            #expect(c.send(.read(fid: i, offset: 0, count: 10), tag: UInt16(100 + i)))
        }
        usleep(100_000)
        let other = try s.client(timeoutSeconds: 2)
        try other.version()  // served on the reader thread, not by a worker
        try other.attach()
        #expect(try other.getattr(0).qid.isDirectory)
    }

    @Test func pipelinedRequestsAreEachAnsweredOnce() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("f"), pseudoRandomBytes(50_000, seed: 9))
        let c = try s.session()
        try c.walk(0, 1, ["f"])
        try c.lopen(1, OpenFlags.readOnly)
        let data = pseudoRandomBytes(50_000, seed: 9)
        var expected: [UInt16: String] = [:]
        for i in 0..<30 {
            let tag = UInt16(100 + i)
            switch i % 3 {
            case 0:
                c.send(.getattr(fid: 0, mask: GetattrMask.all), tag: tag)
                expected[tag] = "getattr"
            case 1:
                c.sendWalk(fid: 0, newfid: UInt32(1000 + i), names: ["f"], tag: tag)
                expected[tag] = "walk"
            default:
                c.send(.read(fid: 1, offset: UInt64(i * 1000), count: 1000), tag: tag)
                expected[tag] = "read"
            }
        }
        var answered: Set<UInt16> = []
        for _ in 0..<30 {
            guard case let .message(m) = c.receive() else {
                Issue.record("missing replies: \(Set(expected.keys).subtracting(answered).sorted())")
                return
            }
            #expect(!answered.contains(m.tag), "tag \(m.tag) answered twice")
            answered.insert(m.tag)
            let i = Int(m.tag) - 100
            switch (expected[m.tag], m.response) {
            case let ("getattr", .getattr(a)): #expect(a.qid.isDirectory)
            case let ("walk", .walk(qids)): #expect(qids.count == 1)
            case let ("read", .read(bytes)): #expect(Array(bytes) == Array(data[i * 1000..<i * 1000 + 1000]))
            default: Issue.record("tag \(m.tag): unexpected \(m.response.type)")
            }
        }
        #expect(answered.count == 30)
        // Every walked fid exists.
        for i in stride(from: 1, to: 30, by: 3) { #expect(try c.getattr(UInt32(1000 + i)).size == 50_000) }
    }

    @Test func aFrameSentOneByteAtATimeIsServed() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        var bytes = frame(type: MessageType.tgetattr.rawValue, tag: 3, body: le32(0) + le64(GetattrMask.all))
        bytes += frame(type: MessageType.tclunk.rawValue, tag: 4, body: le32(0))
        for byte in bytes {
            #expect(c.sendBytes([byte]))
            usleep(200)
        }
        guard case .getattr = try c.reply(tag: 3) else { Issue.record("no Rgetattr"); return }
        guard case .clunk = try c.reply(tag: 4) else { Issue.record("no Rclunk"); return }
    }
}
