import Glibc
import NinePTestSupport
import NinePWire
import Testing

/// A client whose replies pile up unread (one that sends from the same thread it reads with,
/// or whose reading thread is busy) can still send: the server goes on reading its requests
/// while it has memory for them. No thread that reads a connection waits for that client to
/// read; only when the connection's requests hold all of its share does the server stop
/// reading it (the designed push-back, IsolationTests).
///
/// The reader thread serves a lone Tread itself (page cache, RWF_NOWAIT); it used to write
/// the reply itself too, blocking, so a full socket stopped it reading: the client then
/// blocked in send() while the server blocked in send() towards it. CI's memory pressure run
/// lost a connection that way after 30 s ("send TWRITE: timed out").
@Suite struct SlowReaderTests {
    /// A server with msize 1 MiB and room for many large buffers; fid 1 of the client is
    /// "big.bin" (`count` bytes of `data`, in the page cache, so the reader serves reads of it
    /// itself) opened for reading. The server can send it a few KiB ahead: its replies back up
    /// at once; what it sends waits in its end of the socketpair (about 200 KiB), and a send
    /// blocked for 5 s fails (SO_SNDTIMEO).
    private func slowReadingClient(seed: UInt64) throws -> (server: TestServer, client: WireClient, data: [UInt8]) {
        let s = try TestServer {
            $0.maxMessageSize = 1 << 20
            // A connection's share is a quarter of the pool: 16, room for the 12 unread
            // replies and the 2 writes behind them.
            $0.largeBuffers = 64
        }
        let data = pseudoRandomBytes((1 << 20) - 4096, seed: seed)
        makeFile(s("big.bin"), data)
        let c = try s.client(timeoutSeconds: 5, receiveBufferBytes: 4096)
        _ = try c.version(msize: 1 << 20)
        try c.attach(fid: 0)
        try c.walk(0, 1, ["big.bin"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        return (s, c, data)
    }

    @Test func clientCanSendWhileItsRepliesWaitUnread() throws {
        let (s, c, data) = try slowReadingClient(seed: 21)
        defer { s.shutdown() }
        let count = data.count
        makeFile(s("out.bin"))
        try c.walk(0, 2, ["out.bin"])
        _ = try c.lopen(2, OpenFlags.writeOnly)

        // 12 MiB of Rread, more than the server's socket send buffer holds (tcp_wmem's
        // maximum is 4 MiB), none of it read yet.
        let reads = 12
        var expected: [UInt16: Bool] = [:]  // tag -> is a read
        for _ in 0..<reads {
            let tag = c.freshTag()
            #expect(c.send(.read(fid: 1, offset: 0, count: UInt32(count)), tag: tag))
            expected[tag] = true
        }
        // Then 2 MiB of Twrite, more than the socket buffers in between hold: each send
        // completes only if the server reads it.
        let writes = 2
        for index in 0..<writes {
            let tag = c.freshTag()
            let sent = c.send(.write(fid: 2, offset: UInt64(index * count), data: c.view(data)), tag: tag)
            guard sent else {
                Issue.record("Twrite \(index + 1) of \(writes) could not be sent within 5 s behind \(reads) unread Rreads: the server stopped reading the connection")
                return
            }
            expected[tag] = false
        }

        // Every reply then arrives whole and right.
        while !expected.isEmpty {
            guard case let .message(m) = c.receive() else {
                Issue.record("connection ended or timed out with \(expected.count) replies missing")
                return
            }
            guard let isRead = expected.removeValue(forKey: m.tag) else {
                Issue.record("reply to tag \(m.tag), which is not in flight")
                return
            }
            switch m.response {
            case let .read(bytes):
                #expect(isRead && bytes.count == count && bytes.holds(data), "Rread to tag \(m.tag): \(bytes.count) bytes")
            case let .write(written):
                #expect(!isRead && written == UInt32(count), "Rwrite to tag \(m.tag): \(written) bytes")
            default:
                Issue.record("unexpected \(m.response.type) to tag \(m.tag)")
            }
        }
        #expect(fileBytes(s("out.bin")) == data + data)
        // And the connection still serves.
        #expect(try c.getattr(2).size == UInt64(writes * count))
    }

    /// Tflushes sent while replies wait unread: each Rflush comes after the reply it follows,
    /// no frame is cut by another, and the reader is not held up writing them.
    @Test func flushesBehindUnreadRepliesKeepTheirOrder() throws {
        let (s, c, data) = try slowReadingClient(seed: 22)
        defer { s.shutdown() }
        let count = data.count
        var reads: [UInt16] = []
        for _ in 0..<8 {
            let tag = c.freshTag()
            #expect(c.send(.read(fid: 1, offset: 0, count: UInt32(count)), tag: tag))
            reads.append(tag)
        }
        // A flush of the first read (served by the reader: written whole, or partly and the
        // rest waiting), of the last one (queued or running on a worker) and of a tag nobody
        // holds.
        let flushFirst = c.freshTag(), flushLast = c.freshTag(), flushNobody = c.freshTag()
        #expect(c.send(.flush(oldtag: reads[0]), tag: flushFirst))
        #expect(c.send(.flush(oldtag: reads[7]), tag: flushLast))
        #expect(c.send(.flush(oldtag: 60000), tag: flushNobody))

        // Every read but the last is answered (the reader's was running, the others are
        // queued behind it on few workers or answered); the last one at most before its Rflush.
        let needed = Set(reads[0..<7]).union([flushFirst, flushLast, flushNobody])
        var order: [UInt16] = []
        while !needed.isSubset(of: Set(order)) {
            guard case let .message(m) = c.receive() else {
                Issue.record("connection ended or timed out after these replies: \(order)")
                return
            }
            order.append(m.tag)
            switch m.response {
            case let .read(bytes):
                #expect(reads.contains(m.tag) && bytes.holds(data), "Rread to tag \(m.tag): \(bytes.count) bytes")
            case .flush:
                #expect([flushFirst, flushLast, flushNobody].contains(m.tag))
            default:
                Issue.record("unexpected \(m.response.type) to tag \(m.tag)")
            }
        }
        c.expectNothing(milliseconds: 300, "a reply after every Rflush; before: \(order)")
        func position(_ tag: UInt16) -> Int { order.firstIndex(of: tag) ?? Int.max }
        #expect(position(reads[0]) < position(flushFirst), "Rflush before the reply it follows: \(order)")
        #expect(position(flushFirst) != Int.max && position(flushLast) != Int.max && position(flushNobody) != Int.max, "\(order)")
        if order.contains(reads[7]) { #expect(position(reads[7]) < position(flushLast), "\(order)") }
        #expect(try c.getattr(1).size == UInt64(count))
    }

    /// A client that stops reading (a process stopped with ^Z, a hung peer) while many large
    /// replies are due holds no worker: its replies wait on its own connection, and the other
    /// connections are served as before. Workers used to block writing to it, one per reply,
    /// until none was left for anyone.
    @Test func aClientThatStopsReadingHoldsNoWorker() throws {
        let (s, stalled, data) = try slowReadingClient(seed: 23)
        defer { s.shutdown() }
        // 20 reads of 1 MiB, far more replies than the sockets hold, on a server of 4 workers.
        for _ in 0..<20 {
            #expect(stalled.send(.read(fid: 1, offset: 0, count: UInt32(data.count)), tag: stalled.freshTag()))
        }
        // And 100 Tflushes of tags nobody holds: their Rflushes queue behind the replies, 64
        // at most, then the server stops reading this client (push-back), still holding no worker.
        for index in 0..<100 {
            #expect(stalled.send(.flush(oldtag: UInt16(60000 + index)), tag: stalled.freshTag()))
        }
        usleep(300_000)  // the workers have taken the reads and are stuck if they write themselves
        // Another client: requests that need a worker (create, write, open, read of a file
        // not in the page cache is not needed: Tlcreate and Twrite always go to workers).
        let other = try s.session()
        let clock = ContinuousClock()
        let start = clock.now
        try other.walk(0, 1, [])
        _ = try other.lcreate(1, "other.txt")
        #expect(try other.write(1, offset: 0, Array("served".utf8)) == 6)
        try other.clunk(1)
        let took = clock.now - start
        expectPrompt(took, under: .seconds(2), "another client's create and write while one client did not read")
        #expect(fileBytes(s("other.txt")) == Array("served".utf8))
        // The stalled client then reads everything, whole and right.
        var reads = 0, flushes = 0
        while reads + flushes < 120 {
            guard case let .message(m) = stalled.receive() else {
                Issue.record("the stalled client got \(reads) Rreads and \(flushes) Rflushes of 20 and 100, then nothing")
                return
            }
            switch m.response {
            case let .read(bytes):
                reads += 1
                #expect(bytes.holds(data))
            case .flush:
                flushes += 1
            default:
                Issue.record("unexpected \(m.response.type)")
            }
        }
        #expect(reads == 20 && flushes == 100)
    }
}
