import Glibc
import NinePServer
import NinePTestSupport
import NinePTransport
import NinePWire
import Synchronization
import Testing

// Tflush of requests that wait on the outside world (DESIGN.md "Tflush, exactly"): each is
// aborted — no reply for its tag, ever — and its Rflush comes well under a second; the
// connection, the fid and the tag stay usable; nothing is left open in the server.

/// What came back for a Tflush.
struct FlushObservation {
    /// Time from sending the Tflush to its Rflush; nil when none came within the wait.
    var latency: Duration?
    /// Everything received before the Rflush (or before giving up), with arrival times.
    var before: [(message: RMessage, after: Duration)] = []
    var closed = false

    func describeBefore() -> String {
        before.isEmpty ? "nothing" : before.map { "tag \($0.message.tag) \(describeResponse($0.message.response)) at \(ms($0.after))" }.joined(separator: ", ")
    }
}

/// Sends Tflush(oldtag) with `tag` and waits up to `wait` for its Rflush.
func flushAndWait(_ c: WireClient, tag: UInt16, oldtag: UInt16, wait: Duration = .seconds(3)) -> FlushObservation {
    let clock = ContinuousClock()
    var observation = FlushObservation()
    let start = clock.now
    guard c.send(.flush(oldtag: oldtag), tag: tag) else {
        observation.closed = true
        return observation
    }
    while clock.now - start < wait {
        let left = wait - (clock.now - start)
        let (seconds, atto) = left.components
        c.setTimeout(seconds: Int(seconds), milliseconds: max(1, Int(atto / 1_000_000_000_000_000)))
        switch c.receive() {
        case let .message(m):
            if m.tag == tag && m.response == .flush {
                observation.latency = clock.now - start
                c.setTimeout(seconds: c.timeoutSeconds)
                return observation
            }
            observation.before.append((m, clock.now - start))
        case .closed:
            observation.closed = true
            c.setTimeout(seconds: c.timeoutSeconds)
            return observation
        case .timeout:
            break
        }
    }
    c.setTimeout(seconds: c.timeoutSeconds)
    return observation
}

/// The checks every aborted request shares: Rflush within 1 s, nothing for `oldtag` before it
/// (nor anything else), nothing at all for 200 ms after it. False when no Rflush came at all
/// (later steps of a test that depend on it are then pointless).
@discardableResult
func expectAborted(
    _ c: WireClient, oldtag: UInt16, flushTag: UInt16, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    let seen = flushAndWait(c, tag: flushTag, oldtag: oldtag)
    if seen.closed {
        Issue.record("\(what): the connection closed instead of Rflush (before it: \(seen.describeBefore()))", sourceLocation: sourceLocation)
        return false
    }
    guard let latency = seen.latency else {
        Issue.record("\(what): no Rflush (tag \(flushTag), oldtag \(oldtag)) within 3 s; received meanwhile: \(seen.describeBefore()). The rest of the test is skipped.", sourceLocation: sourceLocation)
        return false
    }
    expectPrompt(latency, under: .seconds(1), "\(what): Rflush tag \(flushTag)", sourceLocation: sourceLocation)
    if !seen.before.isEmpty {
        Issue.record("\(what): before Rflush tag \(flushTag) (at \(ms(latency))) came \(seen.describeBefore()); the request cannot complete, so it must be aborted without reply", sourceLocation: sourceLocation)
    }
    c.expectNothing(milliseconds: 200, "\(what): within 200 ms after Rflush tag \(flushTag) (oldtag \(oldtag))", sourceLocation: sourceLocation)
    return true
}

@Suite struct FlushBlockingTests {
    @Test func flushOfAReadOnAnEmptyFifo() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        #expect(mkfifo(s("fifo"), 0o666) == 0)
        let baseline = serverDescriptors(s)
        let c = try s.session()
        try c.walk(0, 1, ["fifo"])
        try c.lopen(1, OpenFlags.readWrite)
        for count: UInt32 in [100, 200 * 1024] {  // a small reply buffer, and a large one
            #expect(c.send(.read(fid: 1, offset: 0, count: count), tag: 10))
            c.expectNothing(milliseconds: 100, "a Tread (count \(count)) of an empty FIFO answered before any flush")
            guard expectAborted(c, oldtag: 10, flushTag: 11, "Tflush of a Tread (count \(count)) of an empty FIFO") else { return }
        }
        // The flushed reads consumed nothing; the fid, the FIFO and tag 10 all still work.
        #expect(c.send(.write(fid: 1, offset: 0, data: c.view("hello")), tag: 10))
        #expect(try c.reply(tag: 10) == .write(count: 5))
        #expect(c.send(.read(fid: 1, offset: 0, count: 100), tag: 10))
        guard case let .read(data) = try c.reply(tag: 10) else { Issue.record("no Rread after the flushes"); return }
        #expect(Array(data) == Array("hello".utf8), "the FIFO returned \(Array(data)) after the flushed reads")
        #expect(try c.getattr(0).qid.isDirectory)
        try expectCleanEnd(of: c, clunking: [1, 0], s, baseline: baseline, "after a flushed FIFO read")
    }

    @Test func flushOfAWriteToAFullFifo() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let fifo = try FIFO(s("fifo"))
        let baseline = serverDescriptors(s)
        let c = try s.session()
        try c.walk(0, 1, ["fifo"])
        try c.lopen(1, OpenFlags.readWrite)
        // Fill the pipe through a descriptor of our own.
        let filled = try fifo.fill()
        #expect(filled >= 65536, "the pipe took only \(filled) bytes")
        // 4096 bytes (PIPE_BUF) are written atomically or not at all: this one waits for room.
        #expect(c.send(.write(fid: 1, offset: 0, data: c.view([UInt8](repeating: UInt8(ascii: "W"), count: 4096))), tag: 20))
        c.expectNothing(milliseconds: 100, "a Twrite to a full FIFO answered before any flush")
        guard expectAborted(c, oldtag: 20, flushTag: 21, "Tflush of a Twrite to a full FIFO (\(filled) bytes in it)") else { return }

        let contents = try fifo.drain()
        let written = contents.filter { $0 == UInt8(ascii: "W") }.count
        #expect(written == 0, "the flushed (unanswered) Twrite put \(written) bytes into the FIFO")
        #expect(contents.count == filled, "the FIFO held \(contents.count) bytes, \(filled) expected")
        // The fid and tag 20 still work.
        #expect(c.send(.write(fid: 1, offset: 0, data: c.view("0123456789")), tag: 20))
        #expect(try c.reply(tag: 20) == .write(count: 10))
        #expect(try fifo.drain() == Array("0123456789".utf8))
        fifo.close()
        try expectCleanEnd(of: c, clunking: [1, 0], s, baseline: baseline, "after a flushed FIFO write")
    }

    /// Tlock never parks a worker: with one worker, a conflicting lock (with or without
    /// P9_LOCK_FLAGS_BLOCK) is answered BLOCKED at once, and its Tflush is answered right after.
    @Test func conflictingLockIsAnsweredBlockedAtOnce() throws {
        let s = try TestServer { $0.workerThreads = 1 }
        defer { s.shutdown() }
        makeFile(s("lockfile"), [1, 2, 3])
        let holder = try s.session()
        try holder.walk(0, 1, ["lockfile"])
        try holder.lopen(1, OpenFlags.readWrite)
        #expect(try holder.lock(1, type: LockType.write) == LockStatus.success)
        let c = try s.session()
        try c.walk(0, 1, ["lockfile"])
        try c.lopen(1, OpenFlags.readWrite)
        let clock = ContinuousClock()
        for flags in [LockFlags.block, 0, LockFlags.block] {
            let start = clock.now
            let fields = LockFields(type: LockType.write, flags: flags, start: 0, length: 0, processID: 9, clientID: c.view("other"))
            #expect(c.send(.lock(fid: 1, fields), tag: 60))
            #expect(c.send(.flush(oldtag: 60), tag: 61))
            var seen: [String] = []
            c.setTimeout(seconds: 3)
            while !seen.contains(where: { $0.hasPrefix("61 ") }), case let .message(m) = c.receive() {
                if case let .lock(status) = m.response {
                    seen.append("\(m.tag) Rlock(\(status))")
                } else {
                    seen.append("\(m.tag) \(describeResponse(m.response))")
                }
            }
            let elapsed = clock.now - start
            #expect(seen.last == "61 rflush", "conflicting Tlock (flags \(flags)) + Tflush: got \(seen) in \(ms(elapsed))")
            expectPrompt(elapsed, under: .milliseconds(500), "conflicting Tlock (flags \(flags)) + Tflush: \(seen)")
            if let reply = seen.first(where: { $0.hasPrefix("60 ") }) {
                #expect(reply == "60 Rlock(\(LockStatus.blocked))", "conflicting Tlock answered \(reply)")
            }
        }
        // The only worker is free: another request is answered.
        #expect(try c.getattr(1).size == 3)
        #expect(try c.lock(1, type: LockType.write) == LockStatus.blocked)
    }

    /// Tlcreate without O_EXCL of a name that is a FIFO with no reader opens the FIFO and
    /// blocks until a reader comes: it must stay with the workers (the connection's reader
    /// serves Tlcreate itself only with O_EXCL, which never opens an existing file), so the
    /// reader goes on reading and answering while it waits. With O_EXCL the same name is
    /// EEXIST at once, and Tunlinkat (also served by the reader) removes it.
    @Test func aCreateThatOpensAFifoWithNoPeerDoesNotHoldTheReader() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        #expect(mkfifo(s("lonely"), 0o666) == 0)
        let c = try s.session()
        try c.walk(0, 1, [])
        #expect(c.send(.lcreate(fid: 1, name: c.view("lonely"), flags: OpenFlags.writeOnly, mode: 0o644, gid: 0), tag: 30))
        c.expectNothing(milliseconds: 150, "Tlcreate O_WRONLY (no O_EXCL) of a FIFO with no reader answered before a reader came")
        // The connection's reader is free: a request behind the blocked create is answered.
        #expect(c.send(.getattr(fid: 0, mask: GetattrMask.basic), tag: 31))
        c.setTimeout(seconds: 2)
        if case let .message(m) = c.receive() {
            #expect(m.tag == 31, "while the create waits for a reader, got tag \(m.tag) \(describeResponse(m.response)) instead of the Tgetattr's answer")
        } else {
            Issue.record("no answer to a Tgetattr sent behind a Tlcreate blocked opening a FIFO: the connection's reader is held by the create")
        }
        c.setTimeout(seconds: c.timeoutSeconds)
        // A reader comes: the create opens the FIFO and answers.
        let peer = Glibc.open(s("lonely"), O_RDONLY | O_NONBLOCK)
        #expect(peer >= 0)
        if case let .message(m) = c.receive() {
            var created = false
            if case .lcreate = m.response { created = true }
            #expect(m.tag == 30 && created, "the blocked Tlcreate, once a reader came: tag \(m.tag) \(describeResponse(m.response))")
        } else {
            Issue.record("no answer to the Tlcreate of the FIFO after a reader came")
        }
        if peer >= 0 { Glibc.close(peer) }
        try c.walk(0, 2, [])
        #expect(errnoOf { try c.lcreate(2, "lonely", flags: OpenFlags.writeOnly | OpenFlags.exclusive) } == LinuxErrno.EEXIST)
        #expect(c.send(.unlinkat(dirfid: 0, name: c.view("lonely"), flags: 0), tag: 32))
        #expect(try c.reply(tag: 32) == .unlinkat)
        #expect(lstatOf(s("lonely")) == nil)
        let qid = try c.lcreate(2, "lonely", flags: OpenFlags.writeOnly | OpenFlags.exclusive)
        #expect(!qid.isDirectory && lstatOf(s("lonely")) != nil)
    }

    /// Tlopen of a FIFO with no peer blocks in open(2): O_RDONLY until a writer comes, O_WRONLY
    /// until a reader comes.
    @Test(arguments: [OpenFlags.readOnly, OpenFlags.writeOnly])
    func flushOfAnOpenOfAFifoWithNoPeer(flags: UInt32) throws {
        let mode = flags == OpenFlags.readOnly ? "O_RDONLY" : "O_WRONLY"
        let s = try TestServer()
        defer { s.shutdown() }
        #expect(mkfifo(s("lonely"), 0o666) == 0)
        let baseline = serverDescriptors(s)
        let c = try s.session()
        try c.walk(0, 1, ["lonely"])
        for round in 0..<3 {
            #expect(c.send(.lopen(fid: 1, flags: flags), tag: 30))
            c.expectNothing(milliseconds: round == 0 ? 150 : 20, "Tlopen \(mode) of a FIFO with no peer answered before any flush")
            guard expectAborted(c, oldtag: 30, flushTag: 31, "round \(round): Tflush of a Tlopen \(mode) of a FIFO with no peer") else { return }
        }
        // The flushed opens did not open the fid: it can be opened now (O_RDWR needs no peer).
        do {
            try c.lopen(1, OpenFlags.readWrite)
        } catch {
            Issue.record("Tlopen O_RDWR after the flushed \(mode) opens: \(error) (EBADF: a flushed open left the fid open)")
        }
        let leftover = serverDescriptors(s).values.filter { $0.hasSuffix("/lonely") }.count
        #expect(leftover <= 2, "\(leftover) descriptors of the FIFO open in the server, at most 2 expected (the fid's O_PATH one and its open one)")
        try expectCleanEnd(of: c, clunking: [1, 0], s, baseline: baseline, "after flushed \(mode) FIFO opens")
    }

    /// One worker, kept busy by another connection's FIFO open with no peer: a request queued
    /// behind it is flushed out of the queue (no reply, Rflush at once) and never runs later;
    /// the others run once the worker is free. If the server does not hold the worker for the
    /// open, the queued case is approached by pipelining instead, and the rules still hold.
    @Test func flushOfARequestQueuedBehindABusyWorker() throws {
        let s = try TestServer { $0.workerThreads = 1 }
        defer { s.shutdown() }
        #expect(mkfifo(s("lonely"), 0o666) == 0)
        makeFile(s("file"), Array("contents".utf8))
        let baseline = serverDescriptors(s)
        let blocker = try s.session()
        try blocker.walk(0, 1, ["lonely"])
        let c = try s.session()
        try c.walk(0, 1, ["file"])
        #expect(blocker.send(.lopen(fid: 1, flags: OpenFlags.readOnly), tag: 40))
        usleep(50_000)
        #expect(c.send(.getattr(fid: 1, mask: GetattrMask.all), tag: 50))
        c.setTimeout(seconds: 0, milliseconds: 150)
        let early = c.receive()
        c.setTimeout(seconds: c.timeoutSeconds)
        if case let .message(m) = early {
            #expect(m.tag == 50, "unexpected tag \(m.tag) \(describeResponse(m.response))")
            print("flushOfARequestQueuedBehindABusyWorker: a Tgetattr was answered while the only worker had a FIFO open with no peer to do: the open does not hold the worker; checking a pipelined queue instead")
        } else {
            // Queued: abort it from the queue, and one in the middle of a pipeline.
            guard expectAborted(c, oldtag: 50, flushTag: 51, "Tflush of a Tgetattr queued behind the only (busy) worker (the worker is in a Tlopen O_RDONLY of a FIFO with no writer)") else { return }
            for tag: UInt16 in 52...55 { #expect(c.send(.getattr(fid: 1, mask: GetattrMask.all), tag: tag)) }
            let middle = flushAndWait(c, tag: 56, oldtag: 53)
            if let latency = middle.latency {
                expectPrompt(latency, under: .seconds(1), "Rflush of a queued Tgetattr")
                #expect(middle.before.isEmpty, "before the Rflush of a queued Tgetattr: \(middle.describeBefore())")
            } else {
                Issue.record("no Rflush within 3 s for a Tgetattr queued behind the busy worker; received: \(middle.describeBefore())")
            }
        }
        // Free the worker.
        guard expectAborted(blocker, oldtag: 40, flushTag: 41, "Tflush of the Tlopen O_RDONLY that held the only worker") else { return }
        var replies: [UInt16: Response] = [:]
        c.setTimeout(seconds: 0, milliseconds: 500)
        while case let .message(m) = c.receive() { replies[m.tag] = m.response }
        c.setTimeout(seconds: c.timeoutSeconds)
        if case .timeout = early {
            #expect(replies[50] == nil && replies[53] == nil, "a flushed queued request ran once the worker was free: tags \(replies.keys.sorted())")
            for tag: UInt16 in [52, 54, 55] {
                if case .getattr = replies[tag] {} else { Issue.record("queued Tgetattr tag \(tag) got \(replies[tag].map(describeResponse) ?? "no reply") once the worker was free") }
            }
        }
        // Either way: a pipeline of quick requests and a flush of one near its end.
        let ledger = FlushLedger(name: "pipeline", tags: 1...200)
        for tag: UInt16 in 100..<140 {
            ledger.sentRequest(tag: tag, label: "Tgetattr").validate = { r in
                if case .getattr = r { return nil }
                return "expected Rgetattr, got \(describeResponse(r))"
            }
            #expect(c.send(.getattr(fid: 1, mask: GetattrMask.all), tag: tag))
        }
        ledger.sentFlush(tag: 150, oldtag: 138)
        #expect(c.send(.flush(oldtag: 138), tag: 150))
        c.setTimeout(seconds: 3)
        while !ledger.unresolved().isEmpty, case let .message(m) = c.receive() { ledger.received(m) }
        #expect(ledger.unresolved().isEmpty, "unanswered: \(ledger.describeUnresolved())")
        c.expectNothing(milliseconds: 200, "after the pipeline")

        for client in [blocker, c] {
            try client.clunk(1)
            try client.clunk(0)
            client.close()
        }
        #expect(waitForConnectionCount(s, 0))
        expectDescriptorsBack(to: baseline, of: s, "after the queued-request flushes")
    }
}

// MARK: - Stuck behind: the smallest pools

/// A read blocked on a FIFO (its reply would need a whole msize), then a Twrite of a whole msize
/// (it needs a large buffer to be received), then the Tflush of the read: with one large buffer
/// in the whole server, the Tflush must not be stuck behind the Twrite stuck behind the read
/// (DESIGN.md, promise 2).
@Suite struct FlushStuckBehindTests {
    static let msize: UInt32 = 1 << 20

    /// What the sender threads did.
    final class SendLog: Sendable {
        let sent = Mutex<[Int: Duration]>([:])
        let failed = Mutex<[Int]>([])
    }

    final class Peer {
        let index: Int
        let client: WireClient
        let data: [UInt8]
        let frames: [UInt8]
        init(index: Int, client: WireClient, data: [UInt8], frames: [UInt8]) {
            self.index = index
            self.client = client
            self.data = data
            self.frames = frames
        }
    }

    func run(connections: Int) throws {
        let s = try TestServer {
            $0.largeBuffers = 1
            $0.maxMessageSize = Self.msize
            $0.maxConnections = max(64, connections + 4)
        }
        defer { s.shutdown() }
        for i in 0..<connections {
            #expect(mkfifo(s("fifo\(i)"), 0o666) == 0)
            makeFile(s("w\(i)"))
        }
        let baseline = serverDescriptors(s)
        var peers: [Peer] = []
        for i in 0..<connections {
            let c = try s.client()
            let (negotiated, _) = try c.version(msize: Self.msize)
            #expect(negotiated == Self.msize)
            try c.attach(fid: 0)
            try c.walk(0, 1, ["fifo\(i)"])
            try c.lopen(1, OpenFlags.readWrite)
            try c.walk(0, 2, ["w\(i)"])
            try c.lopen(2, OpenFlags.readWrite)
            let data = pseudoRandomBytes(Int(Self.msize) - 23, seed: UInt64(i) &+ 0x5EED)
            let write = c.encoded(.write(fid: 2, offset: 0, data: c.view(data)), tag: 2)
            #expect(write.count == Int(Self.msize), "the Twrite frame is \(write.count) bytes, not msize")
            let flush = c.encoded(.flush(oldtag: 1), tag: 3)
            peers.append(Peer(index: i, client: c, data: data, frames: write + flush))
        }
        for peer in peers {
            #expect(peer.client.send(.read(fid: 1, offset: 0, count: Self.msize - 11), tag: 1))
        }
        for peer in peers {
            peer.client.expectNothing(milliseconds: peer.index == 0 ? 100 : 1, "connection \(peer.index): a Tread of an empty FIFO answered before any flush")
        }

        // Twrite + Tflush from one thread per connection, all at once.
        let clock = ContinuousClock()
        let log = SendLog()
        let start = clock.now
        for peer in peers {
            let fd = peer.client.fd
            let bytes = peer.frames
            let index = peer.index
            _ = DaemonThread.start(name: "stuck-behind-\(index)", stackSize: 256 * 1024) {
                if sendRaw(fd, bytes) {
                    let at = clock.now - start
                    log.sent.withLock { $0[index] = at }
                } else {
                    log.failed.withLock { $0.append(index) }
                }
            }
        }
        var rflush: [Int: Duration] = [:]
        var rwrite: [Int: UInt32] = [:]
        var unexpected: [Int: [String]] = [:]
        let deadline = start + .seconds(8)
        while clock.now < deadline && (rflush.count < connections || rwrite.count < connections) {
            var any = false
            for peer in peers where rflush[peer.index] == nil || rwrite[peer.index] == nil {
                guard peer.client.pollReadable(milliseconds: 0) else { continue }
                any = true
                switch peer.client.receiveTransient() {
                case let .message(m):
                    let at = clock.now - start
                    if m.tag == 3 && m.response == .flush {
                        rflush[peer.index] = at
                    } else if m.tag == 2, case let .write(count) = m.response {
                        rwrite[peer.index] = count
                    } else {
                        unexpected[peer.index, default: []].append("tag \(m.tag) \(describeResponse(m.response)) at \(ms(at))")
                    }
                case .closed:
                    unexpected[peer.index, default: []].append("connection closed at \(ms(clock.now - start))")
                    rflush[peer.index] = rflush[peer.index] ?? .seconds(999)
                    rwrite[peer.index] = rwrite[peer.index] ?? 0
                case .timeout:
                    unexpected[peer.index, default: []].append("a frame did not finish")
                }
            }
            if !any { usleep(500) }
        }
        let sendTimes = log.sent.withLock { $0 }
        let sendFailures = log.failed.withLock { $0 }
        let slowest = rflush.values.max() ?? .zero
        print("stuck-behind, \(connections) connection(s): \(rflush.count) Rflush (slowest at \(ms(slowest)) from the start), \(rwrite.count) Rwrite, sends done \(sendTimes.count) (last at \(ms(sendTimes.values.max() ?? .zero))), send failures \(sendFailures.count)")
        func sending(_ i: Int) -> String {
            if let at = sendTimes[i] { return "its Twrite+Tflush were sent by \(ms(at))" }
            if sendFailures.contains(i) { return "its Twrite+Tflush could not be sent within the 5 s send timeout (the server stopped reading)" }
            return "its Twrite+Tflush were still being sent"
        }
        /// One issue per kind of failure, naming the connections (details of the first few).
        func report(_ failing: [Int], _ what: String, _ detail: (Int) -> String) {
            guard !failing.isEmpty else { return }
            let examples = failing.prefix(3).map { "connection \($0): \(detail($0))" }.joined(separator: "; ")
            Issue.record("\(failing.count) of \(connections) connection(s) \(what) [\(failing.map(String.init).joined(separator: ","))]; \(examples)")
        }
        let indexes = Array(0..<connections)
        report(indexes.filter { rflush[$0] == nil }, "got no Rflush for the read blocked on the FIFO within 8 s") { "\(sending($0)); received \(unexpected[$0] ?? [])" }
        for index in indexes {
            if let at = rflush[index], at < .seconds(999) { expectPrompt(at, under: .seconds(1), "connection \(index): the Rflush from the start (\(sending(index)))") }
        }
        report(indexes.filter { rwrite[$0] == nil }, "got no Rwrite for the msize Twrite within 8 s") { sending($0) }
        report(indexes.filter { rwrite[$0].map { $0 != Self.msize - 23 } ?? false }, "got a short Rwrite") { "count \(rwrite[$0]!), expected \(Self.msize - 23)" }
        report(indexes.filter { unexpected[$0] != nil }, "received something else (nothing is expected for the flushed read, tag 1)") { "\(unexpected[$0]!)" }
        guard rflush.count == connections && rwrite.count == connections else {
            print("stuck-behind, \(connections) connection(s): the server did not finish; data and resource checks skipped")
            return
        }
        for peer in peers {
            peer.client.expectNothing(milliseconds: peer.index == 0 ? 200 : 1, "connection \(peer.index): after the Rflush and the Rwrite")
        }
        let wrong = peers.filter { peer in
            let disk = fileBytes(s("w\(peer.index)")) ?? []
            return disk.count != peer.data.count || checksum(disk) != checksum(peer.data)
        }.map(\.index)
        report(wrong, "wrote something else to their file than the Twrite data") { "w\($0) holds \(fileBytes(s("w\($0)"))?.count ?? -1) bytes" }
        // The connections still work, and nothing is left behind.
        for peer in peers {
            do {
                #expect(try peer.client.getattr(2).size == UInt64(Self.msize - 23))
                try peer.client.clunk(1)
                try peer.client.clunk(2)
                try peer.client.clunk(0)
            } catch {
                Issue.record("connection \(peer.index) after the flush: \(error)")
            }
        }
        for peer in peers { peer.client.close() }
        #expect(waitForConnectionCount(s, 0, within: .seconds(5)))
        expectDescriptorsBack(to: baseline, of: s, "stuck-behind with \(connections) connection(s)")
    }

    /// Sends `frames` from another thread (they may not fit the socket buffers while the server
    /// is not reading) and collects replies until every tag of `expected` arrived or `limit`.
    static func sendAndCollect(
        _ c: WireClient, _ frames: [UInt8], expected: Set<UInt16>, limit: Duration = .seconds(5)
    ) -> (replies: [UInt16: (response: String, at: Duration)], extra: [String], sent: Duration?) {
        let clock = ContinuousClock()
        let log = SendLog()
        let fd = c.fd
        let start = clock.now
        _ = DaemonThread.start(name: "stuck-behind-send", stackSize: 256 * 1024) {
            if sendRaw(fd, frames) {
                let at = clock.now - start
                log.sent.withLock { $0[0] = at }
            } else {
                log.failed.withLock { $0.append(0) }
            }
        }
        var replies: [UInt16: (String, Duration)] = [:]
        var extra: [String] = []
        while clock.now - start < limit && !expected.isSubset(of: Set(replies.keys)) {
            guard c.pollReadable(milliseconds: 20) else { continue }
            switch c.receiveTransient() {
            case let .message(m):
                let at = clock.now - start
                var text = describeResponse(m.response)
                if case let .write(count) = m.response { text = "Rwrite(\(count))" }
                if replies[m.tag] != nil || !expected.contains(m.tag) {
                    extra.append("tag \(m.tag) \(text) at \(ms(at))")
                } else {
                    replies[m.tag] = (text, at)
                }
            case .closed:
                extra.append("connection closed at \(ms(clock.now - start))")
                return (replies, extra, log.sent.withLock { $0[0] })
            case .timeout:
                extra.append("a frame did not finish")
            }
        }
        return (replies, extra, log.sent.withLock { $0[0] })
    }

    /// A client with msize `msize`, fid 1 walked to `fifo` (opened O_RDWR when `open`) and fid 2
    /// to a new empty file "w", opened.
    static func fifoAndFileClient(_ s: TestServer, fifo: String, open: Bool) throws -> WireClient {
        makeFile(s("w"))
        let c = try s.client()
        try c.version(msize: Self.msize)
        try c.attach(fid: 0)
        try c.walk(0, 1, [fifo])
        if open { try c.lopen(1, OpenFlags.readWrite) }
        try c.walk(0, 2, ["w"])
        try c.lopen(2, OpenFlags.readWrite)
        return c
    }

    /// Sends a Twrite of a whole msize to fid 2 (tag `write`) and right behind it the Tflush of
    /// `oldtag`, a request parked on a FIFO (tag `flush`), and expects what the stuck-behind
    /// tests expect: the Rflush, promptly, the Twrite answered whole, nothing else, the data on
    /// disk. False when no Rflush came.
    @discardableResult
    static func expectFlushNotStuckBehindWrite(
        _ c: WireClient, _ s: TestServer, oldtag: UInt16, write: UInt16, flush: UInt16, seed: UInt64, _ parked: String
    ) -> Bool {
        let data = pseudoRandomBytes(Int(Self.msize) - 23, seed: seed)
        let frames = c.encoded(.write(fid: 2, offset: 0, data: c.view(data)), tag: write) + c.encoded(.flush(oldtag: oldtag), tag: flush)
        let (replies, extra, sent) = Self.sendAndCollect(c, frames, expected: [write, flush])
        let sending = sent.map { "the Twrite+Tflush were sent by \(ms($0))" } ?? "the Twrite+Tflush could not be sent (the server stopped reading)"
        guard let rflush = replies[flush] else {
            Issue.record("no Rflush within 5 s for \(parked) while a Twrite of a whole msize waits for the only large buffer; \(sending); received \(replies.map { "tag \($0.key) \($0.value.response)" }) \(extra)")
            return false
        }
        #expect(rflush.response == "rflush", "Rflush of \(parked): \(rflush.response) at \(ms(rflush.at)); \(sending)")
        expectPrompt(rflush.at, under: .seconds(1), "Rflush of \(parked) (\(sending))")
        #expect(replies[write]?.response == "Rwrite(\(Self.msize - 23))", "the msize Twrite: \(replies[write].map { "\($0.response) at \(ms($0.at))" } ?? "no reply within 5 s"); \(sending)")
        #expect(extra.isEmpty, "also received \(extra) (nothing is expected for the flushed request, tag \(oldtag))")
        #expect(fileBytes(s("w")) == data)
        return true
    }

    /// A Tread admitted while its fid's FIFO open is still waiting (one worker, busy with the
    /// open) is not known to be a FIFO read at admission. Once the open is done the read waits
    /// for data: it must not keep a large buffer while it does.
    @Test(.timeLimit(.minutes(1)))
    func flushIsNotStuckBehindAReadAdmittedBeforeItsFifoWasOpen() throws {
        let s = try TestServer {
            $0.largeBuffers = 1
            $0.maxMessageSize = Self.msize
            $0.workerThreads = 1
        }
        defer { s.shutdown() }
        let fifo = try FIFO(s("fifo"))
        let c = try Self.fifoAndFileClient(s, fifo: "fifo", open: false)
        #expect(c.send(.lopen(fid: 1, flags: OpenFlags.readOnly), tag: 1))  // waits for a writer, on the only worker
        usleep(50_000)
        #expect(c.send(.read(fid: 1, offset: 0, count: Self.msize - 11), tag: 2))  // queued behind it
        usleep(50_000)
        try fifo.holdOpen()  // the open completes; no data
        c.setTimeout(seconds: 3)
        guard case .lopen = try c.reply(tag: 1) else { Issue.record("no Rlopen"); return }
        c.expectNothing(milliseconds: 100, "a Tread of an empty FIFO (a writer holds it open) answered before any flush")
        guard Self.expectFlushNotStuckBehindWrite(c, s, oldtag: 2, write: 3, flush: 4, seed: 77, "a FIFO read admitted before its fid was open (it reserved a large reply buffer, then parked with it?)") else { return }
        c.expectNothing(milliseconds: 200, "after the Rflush")
    }

    /// A Twrite of more than a small buffer to a full FIFO waits for room, parked: it must not
    /// keep the large buffer its payload came in meanwhile, or the next large message waits for
    /// it and the Tflush that would end it is stuck behind that message.
    @Test(.timeLimit(.minutes(1)))
    func flushIsNotStuckBehindAWriteWhileALargeFifoWriteWaits() throws {
        let s = try TestServer {
            $0.largeBuffers = 1
            $0.maxMessageSize = Self.msize
        }
        defer { s.shutdown() }
        let fifo = try FIFO(s("fifo"))
        let c = try Self.fifoAndFileClient(s, fifo: "fifo", open: true)
        let filled = try fifo.fill()
        #expect(c.send(.write(fid: 1, offset: 0, data: c.view([UInt8](repeating: UInt8(ascii: "W"), count: 64 * 1024))), tag: 1))
        c.expectNothing(milliseconds: 100, "a 64 KiB Twrite to a full FIFO answered before any flush")
        guard Self.expectFlushNotStuckBehindWrite(c, s, oldtag: 1, write: 2, flush: 3, seed: 78, "a 64 KiB Twrite parked on a full FIFO (does the parked write keep its large buffer?)") else { return }
        let contents = try fifo.drain()
        #expect(contents.count == filled && !contents.contains(UInt8(ascii: "W")), "the FIFO holds \(contents.count) bytes (\(contents.filter { $0 == UInt8(ascii: "W") }.count) from the flushed write), \(filled) expected")
    }

    @Test(.timeLimit(.minutes(1)))
    func flushIsNotStuckBehindAWriteWaitingForTheOnlyLargeBuffer() throws {
        try run(connections: 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func flushIsNotStuckBehindWritesOf32Connections() throws {
        try run(connections: 32)
    }
}

// MARK: - Flush racing a reply

@Suite struct FlushRaceTests {
    /// A quick request immediately followed (same segment) by its Tflush, thousands of times,
    /// reusing the same two tags: either its reply then Rflush, or Rflush alone (and then the
    /// request did not happen); never Rflush then the reply.
    @Test(.timeLimit(.minutes(1)))
    func flushRacingTheReply() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("file"), pseudoRandomBytes(65536, seed: 9))
        makeFile(s("lockfile"), [1, 2, 3])
        makeFile(s("target"))
        let baseline = serverDescriptors(s)
        let c = try s.session()
        c.setTimeout(seconds: 3)
        try c.walk(0, 1, ["file"])
        try c.lopen(1, OpenFlags.readWrite)
        try c.walk(0, 2, ["lockfile"])
        try c.lopen(2, OpenFlags.readWrite)
        #expect(try c.lock(2, type: LockType.write) == LockStatus.success)
        try c.walk(0, 3, ["lockfile"])
        try c.lopen(3, OpenFlags.readWrite)
        try c.walk(0, 4, ["target"])
        try c.lopen(4, OpenFlags.readWrite)
        let clientID = c.view("race")
        let payload = [UInt8](repeating: 0xAB, count: 8)
        let payloadView = c.view(payload)

        enum Kind: CaseIterable { case getattr, read, lock, statfs, walk, write }
        var outcomes: [String: (replied: Int, flushedOnly: Int)] = [:]
        var performedWrites: Set<Int> = []
        var abortedWrites: Set<Int> = []
        let clock = ContinuousClock()
        let start = clock.now
        let iterations = 3000
        var done = 0
        var problems = 0
        for i in 0..<iterations where clock.now - start < .seconds(20) && problems < 10 {
            let kind = Kind.allCases[i % Kind.allCases.count]
            let tag: UInt16 = 1
            let flushTag: UInt16 = 2
            let request: [UInt8]
            switch kind {
            case .getattr: request = c.encoded(.getattr(fid: 1, mask: GetattrMask.all), tag: tag)
            case .read: request = c.encoded(.read(fid: 1, offset: UInt64(i % 16) * 4096, count: 4096), tag: tag)
            case .lock:
                request = c.encoded(.lock(fid: 3, LockFields(type: LockType.write, flags: 0, start: 0, length: 0, processID: 5, clientID: clientID)), tag: tag)
            case .statfs: request = c.encoded(.statfs(fid: 0), tag: tag)
            case .walk: request = c.encodedWalk(fid: 0, newfid: 100, names: ["file"], tag: tag)
            case .write: request = c.encoded(.write(fid: 4, offset: UInt64(i) * 8, data: payloadView), tag: tag)
            }
            guard sendRaw(c.fd, request + c.encoded(.flush(oldtag: tag), tag: flushTag)) else {
                Issue.record("iteration \(i): send failed")
                break
            }
            var reply: Response? = nil
            var sawFlush = false
            while !sawFlush {
                guard case let .message(m) = c.receiveTransient() else {
                    Issue.record("iteration \(i) (\(kind)): no Rflush within 3 s (reply seen: \(reply.map(describeResponse) ?? "none"))")
                    problems += 1
                    break
                }
                if m.tag == flushTag {
                    if m.response != .flush {
                        Issue.record("iteration \(i) (\(kind)): Tflush answered with \(describeResponse(m.response))")
                        problems += 1
                    }
                    sawFlush = true
                } else if m.tag == tag {
                    if reply != nil {
                        Issue.record("iteration \(i) (\(kind)): a second reply for tag \(tag): \(describeResponse(m.response))")
                        problems += 1
                    }
                    let matches: Bool
                    switch (kind, m.response) {
                    case (.getattr, .getattr), (.read, .read), (.statfs, .statfs), (.walk, .walk): matches = true
                    case let (.lock, .lock(status)): matches = status == LockStatus.blocked
                    case let (.write, .write(count)): matches = count == 8
                    default: matches = false
                    }
                    if !matches {
                        Issue.record("iteration \(i) (\(kind)): reply \(describeResponse(m.response)) does not fit the request (a stale reply of an earlier, flushed request with the same tag?)")
                        problems += 1
                    }
                    reply = m.response
                } else {
                    Issue.record("iteration \(i) (\(kind)): reply with tag \(m.tag) \(describeResponse(m.response))")
                    problems += 1
                }
            }
            guard sawFlush else { break }
            let key = "\(kind)"
            if reply != nil {
                outcomes[key, default: (0, 0)].replied += 1
            } else {
                outcomes[key, default: (0, 0)].flushedOnly += 1
            }
            switch kind {
            case .write:
                if reply != nil { performedWrites.insert(i) } else { abortedWrites.insert(i) }
            case .walk:
                if reply != nil {
                    do { try c.clunk(100) } catch {
                        Issue.record("iteration \(i): Tclunk of the walked fid 100: \(error)")
                        problems += 1
                    }
                } else {
                    // The walk did not happen: fid 100 must be free.
                    do {
                        try c.attach(fid: 100)
                        try c.clunk(100)
                    } catch {
                        Issue.record("iteration \(i): the flushed (unanswered) Twalk left fid 100 behind: Tattach on it gives \(error)")
                        problems += 1
                    }
                }
            default: break
            }
            done += 1
        }
        c.expectNothing(milliseconds: 200, "after the last iteration")
        let disk = fileBytes(s("target")) ?? []
        for i in performedWrites {
            let slice = disk.count >= i * 8 + 8 ? Array(disk[(i * 8)..<(i * 8 + 8)]) : []
            if slice != payload { Issue.record("the acknowledged Twrite of iteration \(i) is not on disk"); break }
        }
        for i in abortedWrites where disk.count >= i * 8 + 8 {
            if disk[(i * 8)..<(i * 8 + 8)].contains(where: { $0 != 0 }) {
                Issue.record("the Twrite of iteration \(i) got only an Rflush (no reply), yet it was performed")
                break
            }
        }
        let summary = outcomes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.replied) reply+Rflush, \($0.value.flushedOnly) Rflush only" }
        print("flush racing a reply: \(done) iterations in \(ms(clock.now - start)); \(summary.joined(separator: "; "))")
        #expect(done == iterations || clock.now - start >= .seconds(20), "stopped after \(done) iterations")
        for fid: UInt32 in [1, 2, 3, 4, 0] { try c.clunk(fid) }
        c.close()
        #expect(waitForConnectionCount(s, 0))
        expectDescriptorsBack(to: baseline, of: s, "after the flush races")
    }
}

// MARK: - Connections closed with flushes pending

@Suite struct FlushAndCloseTests {
    /// Blocked FIFO reads, a FIFO open with no peer, their Tflushes (and a flush of a flush),
    /// then the socket is closed — reset, or shut down, at various moments. The server stays
    /// healthy and gives everything back.
    @Test(.timeLimit(.minutes(1)))
    func connectionClosedWithFlushesPending() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        #expect(mkfifo(s("fifo"), 0o666) == 0)
        #expect(mkfifo(s("lonely"), 0o666) == 0)
        makeFile(s("file"), [1, 2, 3])
        let baseline = serverDescriptors(s)
        for round in 0..<16 {
            let c = try s.session()
            for fid: UInt32 in 1...3 {
                try c.walk(0, fid, ["fifo"])
                try c.lopen(fid, OpenFlags.readWrite)
            }
            try c.walk(0, 4, ["lonely"])
            try c.walk(0, 5, ["file"])
            var frames: [UInt8] = []
            frames += c.encoded(.read(fid: 1, offset: 0, count: 100), tag: 10)
            frames += c.encoded(.read(fid: 2, offset: 0, count: 300 * 1024), tag: 11)
            frames += c.encoded(.read(fid: 3, offset: 0, count: 100), tag: 12)
            frames += c.encoded(.lopen(fid: 4, flags: round % 2 == 0 ? OpenFlags.readOnly : OpenFlags.writeOnly), tag: 13)
            frames += c.encoded(.getattr(fid: 5, mask: GetattrMask.all), tag: 14)
            if round % 4 != 3 {
                frames += c.encoded(.flush(oldtag: 10), tag: 20)
                frames += c.encoded(.flush(oldtag: 11), tag: 21)
                frames += c.encoded(.flush(oldtag: 13), tag: 23)
                frames += c.encoded(.flush(oldtag: 20), tag: 24)
                frames += c.encoded(.flush(oldtag: 12), tag: 22)
            }
            #expect(sendRaw(c.fd, frames))
            switch round % 4 {
            case 0: break  // close at once
            case 1: usleep(5_000)
            case 2:
                c.setTimeout(seconds: 0, milliseconds: 300)
                _ = c.receive()  // something came back (or not): close anyway
            default: usleep(20_000)  // no flushes: blocked requests at close
            }
            if round % 3 == 0 {
                _ = shutdown(c.fd, Int32(SHUT_RDWR))
                c.close()
            } else {
                c.abortiveClose()
            }
        }
        #expect(waitForConnectionCount(s, 0, within: .seconds(5)), "\(s.server.connectionCount) connection(s) still open in the server after every client closed")
        // Still healthy.
        let other = try s.session()
        try other.walk(0, 1, ["fifo"])
        try other.lopen(1, OpenFlags.readWrite)
        #expect(other.send(.read(fid: 1, offset: 0, count: 10), tag: 7))
        expectAborted(other, oldtag: 7, flushTag: 8, "a FIFO read flushed after the closed connections")
        #expect(try other.getattr(0).qid.isDirectory)
        try other.clunk(1)
        try other.clunk(0)
        other.close()
        #expect(waitForConnectionCount(s, 0))
        expectDescriptorsBack(to: baseline, of: s, "after 16 connections closed with flushes pending")
    }
}
