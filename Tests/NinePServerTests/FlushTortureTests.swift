import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// Seeded random pipelines with Tflushes at random moments, over several connections, every
/// message checked by `FlushLedger` (DESIGN.md "Tflush, exactly"). Replay a run with
/// NINEP_FLUSH_SEED=<seed> (printed, and in every failure).
@Suite struct FlushTortureTests {
    static let defaultSeed: UInt64 = 0xF1A5_2025

    static var seed: UInt64 {
        if let text = getenv("NINEP_FLUSH_SEED").map({ String(cString: $0) }) {
            if text.hasPrefix("0x"), let value = UInt64(text.dropFirst(2), radix: 16) { return value }
            if let value = UInt64(text) { return value }
        }
        return defaultSeed
    }

    @Test(.timeLimit(.minutes(2)))
    func randomPipelinesWithFlushes() throws {
        let seed = Self.seed
        var torture = try FlushTorture(seed: seed, connections: 4, requestTarget: 8000, budget: .seconds(20))
        defer {
            torture.server.shutdown()
            torture.deallocate()
        }
        torture.run()
    }

    /// The same without requests that wait on the outside world (FIFO reads of an empty FIFO,
    /// FIFO opens with no peer): every request can complete, so a failure here is about
    /// ordering, tags and accounting, not about aborting.
    @Test(.timeLimit(.minutes(2)))
    func randomPipelinesWithFlushesOfQuickRequests() throws {
        let seed = Self.seed &+ 1
        var torture = try FlushTorture(seed: seed, connections: 3, requestTarget: 4000, budget: .seconds(10), blocking: false)
        defer {
            torture.server.shutdown()
            torture.deallocate()
        }
        torture.run()
    }
}

/// The pattern byte at `position` of regular file `file`: never 0, so a hole (0) and written
/// data are told apart, and the same at any position whichever write put it there.
func tortureByte(file: Int, position: Int) -> UInt8 {
    let mixed = UInt32(truncatingIfNeeded: position &* 2_654_435_761) >> 24 ^ UInt32(truncatingIfNeeded: file &* 77 &+ position >> 12)
    return UInt8(truncatingIfNeeded: mixed) | 1
}

private func describe(_ response: Response) -> String {
    if case let .lerror(code) = response { return "Rlerror(\(code))" }
    return "\(response.type)"
}

/// One connection of the torture: its fids, tags, and what its requests did.
final class TortureConnection {
    let index: Int
    let client: WireClient
    let ledger: FlushLedger
    let directory: String
    var dead = false

    static let dirFid: UInt32 = 1
    static let fileFids: [UInt32] = [2, 3]
    static let fifoAFid: UInt32 = 4  // never written: every read waits until flushed
    static let fifoBFid: UInt32 = 5  // small writes and reads
    static let lockHolderFid: UInt32 = 6
    static let lockContenderFid: UInt32 = 7
    static let tempFids: Range<UInt32> = 100..<120
    static let fileSize = 2 * 1024 * 1024
    static let msize: UInt32 = 1024 * 1024

    struct TempFid {
        enum State { case free, busy, live }
        var state = State.free
        var isFifo = false
        var opened = false
    }
    var temps: [UInt32: TempFid] = [:]
    var openInFlight = false

    struct WriteRecord {
        var file: Int
        var offset: Int
        var length: Int
        var tag: UInt16
        var performed: Bool
    }
    var writes: [WriteRecord] = []
    var fifoBWritten = 0
    var fifoBRead = 0
    var fifoBWriteInFlight = 0
    var fifoAReads = 0
    var fifoOpens = 0
    var lockConflicts = 0

    /// A Tflush to send later: at a step, or at an instant.
    struct Scheduled {
        var step: Int?
        var at: ContinuousClock.Instant?
        var instance: FlushLedger.Instance
    }
    var scheduled: [Scheduled] = []
    var clientID: ByteView

    init(index: Int, client: WireClient, directory: String, seed: UInt64) {
        self.index = index
        self.client = client
        self.directory = directory
        ledger = FlushLedger(name: "connection \(index), seed \(seed)", tags: 1...48)
        clientID = client.view("torture-\(index)")
        for fid in Self.tempFids { temps[fid] = TempFid() }
    }
}

struct FlushTorture {
    let seed: UInt64
    var rng: SeededGenerator
    let server: TestServer
    var connections: [TortureConnection] = []
    let requestTarget: Int
    let budget: Duration
    let clock = ContinuousClock()
    var step = 0
    let maxBusy = 24
    /// Pattern bytes of each regular file, the source of every Twrite payload.
    let patterns: [UnsafeMutableRawBufferPointer]
    /// 0x5A bytes, the payload of every fifoB write.
    let fifoPayload: UnsafeMutableRawBufferPointer
    var baseline: [Int32: String] = [:]
    var processBaseline = 0
    var recovered = false
    /// Whether requests that wait on the outside world are generated.
    let blocking: Bool

    init(seed: UInt64, connections count: Int, requestTarget: Int, budget: Duration, blocking: Bool = true) throws {
        self.seed = seed
        self.blocking = blocking
        rng = SeededGenerator(seed: seed)
        self.requestTarget = requestTarget
        self.budget = budget
        server = try TestServer {
            $0.workerThreads = 4
            $0.largeBuffers = 4
        }
        var patterns: [UnsafeMutableRawBufferPointer] = []
        for file in 0..<2 {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: TortureConnection.fileSize, alignment: 16)
            for position in 0..<buffer.count { buffer[position] = tortureByte(file: file, position: position) }
            patterns.append(buffer)
        }
        self.patterns = patterns
        fifoPayload = .allocate(byteCount: 4096, alignment: 16)
        fifoPayload.initializeMemory(as: UInt8.self, repeating: 0x5A)
        for index in 0..<count {
            let directory = "c\(index)"
            makeDirectory(server(directory))
            makeFile(server("\(directory)/f0"))
            makeFile(server("\(directory)/f1"))
            makeFile(server("\(directory)/lockfile"), [UInt8](repeating: 7, count: 100))
            for fifo in ["fifoA", "fifoB", "fifoC"] {
                precondition(mkfifo(server("\(directory)/\(fifo)"), 0o666) == 0, "mkfifo: errno \(errno)")
            }
        }
        baseline = serverDescriptors(server)
        processBaseline = processDescriptorCount()
        for index in 0..<count {
            let c = try server.session(msize: TortureConnection.msize)
            c.setTimeout(seconds: 2)
            let directory = "c\(index)"
            try c.walk(0, TortureConnection.dirFid, [directory])
            for (i, fid) in TortureConnection.fileFids.enumerated() {
                try c.walk(TortureConnection.dirFid, fid, ["f\(i)"])
                try c.lopen(fid, OpenFlags.readWrite)
            }
            try c.walk(TortureConnection.dirFid, TortureConnection.fifoAFid, ["fifoA"])
            try c.lopen(TortureConnection.fifoAFid, OpenFlags.readWrite)
            try c.walk(TortureConnection.dirFid, TortureConnection.fifoBFid, ["fifoB"])
            try c.lopen(TortureConnection.fifoBFid, OpenFlags.readWrite)
            try c.walk(TortureConnection.dirFid, TortureConnection.lockHolderFid, ["lockfile"])
            try c.lopen(TortureConnection.lockHolderFid, OpenFlags.readWrite)
            let held = try c.lock(TortureConnection.lockHolderFid, type: LockType.write)
            precondition(held == LockStatus.success, "the lock holder did not get its lock")
            try c.walk(TortureConnection.dirFid, TortureConnection.lockContenderFid, ["lockfile"])
            try c.lopen(TortureConnection.lockContenderFid, OpenFlags.readWrite)
            connections.append(TortureConnection(index: index, client: c, directory: directory, seed: seed))
        }
    }

    func deallocate() {
        for pattern in patterns { pattern.deallocate() }
        fifoPayload.deallocate()
    }

    // MARK: The run

    mutating func run() {
        print("flush torture: seed \(seed) (0x\(String(seed, radix: 16))); replay with NINEP_FLUSH_SEED=\(seed)")
        let start = clock.now
        var lastProgress = clock.now
        var stalled = false
        while totalRequests < requestTarget && clock.now - start < budget {
            step += 1
            sendDueFlushes()
            let c = connections[Int.random(in: 0..<connections.count, using: &rng)]
            if !c.dead && c.ledger.busyCount < maxBusy {
                issueRandomOperation(on: c)
            }
            if Int.random(in: 0..<100, using: &rng) < 3 {
                usleep(UInt32.random(in: 200...3000, using: &rng))
            }
            let allFull = connections.allSatisfy { $0.dead || $0.ledger.busyCount >= maxBusy }
            if drain(waitMilliseconds: allFull ? 20 : 0) > 0 { lastProgress = clock.now }
            if let (c, old) = oldestPendingFlush(), clock.now - old.sentAt > .seconds(3) {
                c.ledger.issue(
                    "seed \(seed): Tflush tag \(old.tag) has had no Rflush for \(ms(clock.now - old.sentAt)); it flushes \(c.ledger.summary(old.target)). Stopping the run. In flight: \(pendingSummary())",
                    tags: [old.tag, old.target?.tag ?? old.tag])
                stalled = true
                break
            }
            if allFull && clock.now - lastProgress > .seconds(3) {
                Issue.record("seed \(seed): no reply at all for 3 s with every connection at \(maxBusy) requests in flight; stopping the run. Pending: \(pendingSummary())")
                stalled = true
                break
            }
            if connections.allSatisfy(\.dead) { break }
        }
        let generated = clock.now - start
        finish(stalled: stalled)
        report(elapsed: generated, total: clock.now - start)
    }

    var totalRequests: Int { connections.reduce(0) { $0 + $1.ledger.requests } }

    func oldestPendingFlush() -> (TortureConnection, FlushLedger.Instance)? {
        connections.flatMap { c in c.ledger.unresolved().filter(\.isFlush).map { (c, $0) } }.min { $0.1.sentAt < $1.1.sentAt }
    }

    func pendingSummary() -> String {
        connections.map { "[\($0.ledger.name): \($0.ledger.unresolved().count) unanswered: \($0.ledger.describeUnresolved(limit: 6))]" }.joined(separator: " ")
    }

    /// Receives every reply that is there (waiting up to `waitMilliseconds` for the first).
    @discardableResult
    mutating func drain(waitMilliseconds: Int32) -> Int {
        var received = 0
        var first = true
        for c in connections where !c.dead {
            while c.client.pollReadable(milliseconds: first ? waitMilliseconds : 0) {
                switch c.client.receiveTransient() {
                case let .message(m):
                    c.ledger.received(m)
                    received += 1
                case .closed:
                    c.ledger.issue("the server closed the connection (seed \(seed))", tags: [])
                    c.dead = true
                case .timeout:
                    c.ledger.issue("a reply frame started but did not finish within the receive timeout", tags: [])
                    c.dead = true
                }
                if c.dead { break }
            }
            first = false
        }
        return received
    }

    // MARK: Flushes

    /// Sends Tflush(oldtag) and, at random, a second flush of the same tag and a flush of the
    /// flush.
    @discardableResult
    mutating func flush(_ c: TortureConnection, oldtag: UInt16) -> Bool {
        guard let tag = c.ledger.freeTag(using: &rng, excluding: oldtag) else { return false }
        let flush = c.ledger.sentFlush(tag: tag, oldtag: oldtag)
        var bytes = c.client.encoded(.flush(oldtag: oldtag), tag: tag)
        let roll = Int.random(in: 0..<100, using: &rng)
        if roll < 8, let again = c.ledger.freeTag(using: &rng, excluding: oldtag) {
            c.ledger.sentFlush(tag: again, oldtag: oldtag)
            bytes += c.client.encoded(.flush(oldtag: oldtag), tag: again)
        } else if roll < 16, let outer = c.ledger.freeTag(using: &rng, excluding: flush.tag) {
            c.ledger.sentFlush(tag: outer, oldtag: flush.tag)
            bytes += c.client.encoded(.flush(oldtag: flush.tag), tag: outer)
        } else if roll < 22 {
            // A flush of this flush, a little later.
            schedule(c, flush)
        }
        send(c, bytes)
        return true
    }

    mutating func schedule(_ c: TortureConnection, _ instance: FlushLedger.Instance) {
        if Bool.random(using: &rng) {
            c.scheduled.append(.init(step: step + Int.random(in: 1...40, using: &rng), at: nil, instance: instance))
        } else {
            let delay = Duration.microseconds(Int64.random(in: 500...30_000, using: &rng))
            c.scheduled.append(.init(step: nil, at: clock.now + delay, instance: instance))
        }
    }

    mutating func sendDueFlushes() {
        let now = clock.now
        for c in connections where !c.dead {
            var index = 0
            while index < c.scheduled.count {
                let due = c.scheduled[index]
                if (due.step.map { $0 <= step } ?? false) || (due.at.map { $0 <= now } ?? false) {
                    c.scheduled.remove(at: index)
                    let instance = due.instance
                    let stillThere = c.ledger.owners[instance.tag] === instance
                    if stillThere && instance.outcome == .pending {
                        flush(c, oldtag: instance.tag)
                    } else if Int.random(in: 0..<100, using: &rng) < 25 {
                        // Its reply came: flush the tag anyway (answered, or reused meanwhile).
                        flush(c, oldtag: instance.tag)
                    }
                } else {
                    index += 1
                }
            }
        }
    }

    /// Sends a request; then, at random, its Tflush in the same segment, or one later. A request
    /// that cannot complete on its own is always flushed.
    mutating func request(
        _ c: TortureConnection, _ bytes: [UInt8], label: String, mustFlush: Bool = false,
        configure: (FlushLedger.Instance) -> Void
    ) {
        guard let tag = c.ledger.freeTag(using: &rng) else { return }
        // `bytes` were encoded with tag 0xFFFE; patch the tag in.
        var frame = bytes
        frame[5] = UInt8(truncatingIfNeeded: tag)
        frame[6] = UInt8(truncatingIfNeeded: tag >> 8)
        let instance = c.ledger.sentRequest(tag: tag, label: label)
        configure(instance)
        let roll = Int.random(in: 0..<100, using: &rng)
        if (30..<40).contains(roll), let flushTag = c.ledger.freeTag(using: &rng) {
            // The flush a few dozen microseconds later: the request is likely running.
            send(c, frame)
            let until = clock.now + .microseconds(Int64.random(in: 10...400, using: &rng))
            while clock.now < until {}
            c.ledger.sentFlush(tag: flushTag, oldtag: tag)
            send(c, c.client.encoded(.flush(oldtag: tag), tag: flushTag))
            if mustFlush && Int.random(in: 0..<100, using: &rng) < 10 { schedule(c, instance) }
            return
        }
        if roll < 30 {
            // The flush right behind the request, in the same send.
            if let flushTag = c.ledger.freeTag(using: &rng) {
                c.ledger.sentFlush(tag: flushTag, oldtag: tag)
                frame += c.client.encoded(.flush(oldtag: tag), tag: flushTag)
                send(c, frame)
                if mustFlush && Int.random(in: 0..<100, using: &rng) < 10 { schedule(c, instance) }
                return
            }
        }
        send(c, frame)
        if mustFlush || roll < 60 {
            schedule(c, instance)
        }
    }

    /// Sends without ever blocking on a full socket while replies wait to be read (the server
    /// may be blocked writing them to us): whenever the socket is full, replies are received.
    mutating func send(_ c: TortureConnection, _ bytes: [UInt8]) {
        var done = 0
        let deadline = clock.now + .seconds(5)
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(c.client.fd, raw.baseAddress! + done, raw.count - done, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
            if n > 0 {
                done += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            guard n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), clock.now < deadline else {
                c.ledger.issue("send failed after \(done) of \(bytes.count) bytes (errno \(errno)): the server stopped reading for 5 s, or closed", tags: [])
                c.dead = true
                return
            }
            drain(waitMilliseconds: 1)
        }
    }

    // MARK: Operations

    mutating func issueRandomOperation(on c: TortureConnection) {
        let roll = Int.random(in: 0..<100, using: &rng)
        switch roll {
        case 0..<12: getattr(c)
        case 12..<24: walkTemp(c)
        case 24..<33: clunkTemp(c)
        case 33..<45: readRegular(c)
        case 45..<58: writeRegular(c)
        case 58..<67: if blocking { readFifoA(c) } else { getattr(c) }
        case 67..<73: if blocking { readFifoB(c) } else { readRegular(c) }
        case 73..<80: writeFifoB(c)
        case 80..<86: lockConflict(c)
        case 86..<88: fsync(c)
        case 88..<92: if blocking { openFifoC(c) } else { walkTemp(c) }
        default:
            // A flush of a tag that is not in flight: never used, or answered.
            let oldtag: UInt16
            if Bool.random(using: &rng) {
                oldtag = UInt16.random(in: 1000...2000, using: &rng)
            } else if let free = c.ledger.recentlyFreed.last, c.ledger.isFree(free) {
                oldtag = free
            } else {
                oldtag = 999
            }
            flush(c, oldtag: oldtag)
        }
    }

    static let placeholderTag: UInt16 = 0xFFFE

    mutating func getattr(_ c: TortureConnection) {
        let fid = TortureConnection.fileFids[Int.random(in: 0..<2, using: &rng)]
        let bytes = c.client.encoded(.getattr(fid: fid, mask: GetattrMask.all), tag: Self.placeholderTag)
        request(c, bytes, label: "Tgetattr fid \(fid)") { instance in
            instance.validate = { response in
                if case .getattr = response { return nil }
                return "expected Rgetattr, got \(describe(response))"
            }
        }
    }

    mutating func walkTemp(_ c: TortureConnection) {
        guard let fid = c.temps.filter({ $0.value.state == .free }).keys.sorted().randomElement(using: &rng) else { return }
        let toFifo = Int.random(in: 0..<100, using: &rng) < 25
        let name = toFifo ? "fifoC" : "f\(Int.random(in: 0..<2, using: &rng))"
        let bytes = c.client.encodedWalk(fid: TortureConnection.dirFid, newfid: fid, names: [name], tag: Self.placeholderTag)
        c.temps[fid]!.state = .busy
        request(c, bytes, label: "Twalk newfid \(fid) to \(name)") { instance in
            instance.validate = { response in
                if case let .walk(qids) = response, qids.count == 1 { return nil }
                if case .lerror(UInt32(EBADF)) = response {
                    return "EBADF: newfid \(fid) already exists in the server although the test holds it free (an earlier Twalk to it that got only an Rflush did create it, or an earlier Tclunk of it that got only an Rflush did not... see the wire)"
                }
                return "expected Rwalk with one qid, got \(describe(response))"
            }
            instance.onResolve = { response in
                if let response, case .walk = response {
                    c.temps[fid] = TortureConnection.TempFid(state: .live, isFifo: toFifo, opened: false)
                } else {
                    c.temps[fid] = TortureConnection.TempFid()
                }
            }
        }
    }

    mutating func clunkTemp(_ c: TortureConnection) {
        guard let fid = c.temps.filter({ $0.value.state == .live }).keys.sorted().randomElement(using: &rng) else { return }
        let bytes = c.client.encoded(.clunk(fid: fid), tag: Self.placeholderTag)
        let previous = c.temps[fid]!
        c.temps[fid]!.state = .busy
        request(c, bytes, label: "Tclunk fid \(fid)") { instance in
            instance.validate = { response in
                if case .clunk = response { return nil }
                return "expected Rclunk, got \(describe(response)) (a Tclunk flushed earlier without reply must have left fid \(fid) alone)"
            }
            instance.onResolve = { response in
                if let response {
                    if case .clunk = response {} else { c.ledger.issue("fid \(fid) state unknown after \(describe(response))", tags: []) }
                    c.temps[fid] = TortureConnection.TempFid()
                } else {
                    c.temps[fid] = previous  // flushed: the fid stays
                }
            }
        }
    }

    mutating func readRegular(_ c: TortureConnection) {
        let file = Int.random(in: 0..<2, using: &rng)
        let fid = TortureConnection.fileFids[file]
        let offset = Int.random(in: 0..<TortureConnection.fileSize, using: &rng)
        let count = Int.random(in: 0..<100, using: &rng) < 5 ? 128 * 1024 : Int.random(in: 1...16384, using: &rng)
        let bytes = c.client.encoded(.read(fid: fid, offset: UInt64(offset), count: UInt32(count)), tag: Self.placeholderTag)
        let pattern = UnsafeRawBufferPointer(patterns[file])
        request(c, bytes, label: "Tread fid \(fid) offset \(offset) count \(count)") { instance in
            instance.validate = { response in
                guard case let .read(data) = response else { return "expected Rread, got \(describe(response))" }
                if data.count > count { return "Rread of \(data.count) bytes for count \(count)" }
                if data.count == 0 { return nil }
                if offset + data.count > pattern.count { return "Rread of \(data.count) bytes at \(offset), past the end of anything written" }
                // memcmp first: a byte-by-byte check in a debug build took up to a third of a
                // second per reply on this one client thread, and the Rflushes queued behind
                // such replies were measured as 2 s late (the server had sent them in 18 ms).
                if memcmp(data.base.baseAddress!, pattern.baseAddress! + offset, data.count) == 0 { return nil }
                // Holes (never written) read as 0: only now byte by byte.
                for i in 0..<data.count where data.base[i] != 0 && data.base[i] != pattern[offset + i] {
                    return "byte \(offset + i) of f\(file) is \(data.base[i]): neither a hole nor what any Twrite put there"
                }
                return nil
            }
        }
    }

    mutating func writeRegular(_ c: TortureConnection) {
        let file = Int.random(in: 0..<2, using: &rng)
        let fid = TortureConnection.fileFids[file]
        let roll = Int.random(in: 0..<100, using: &rng)
        // Mostly small; some large; a few of a whole msize, which take long enough to be
        // running (not abortable) when their Tflush comes.
        let length: Int
        switch roll {
        case 0..<70: length = Int.random(in: 1...4096, using: &rng)
        case 70..<90: length = Int.random(in: 4097...16384, using: &rng)
        case 90..<96: length = Int.random(in: 65536...131072, using: &rng)
        default: length = Int.random(in: 512 * 1024...(Int(TortureConnection.msize) - 23), using: &rng)
        }
        let offset = Int.random(in: 0...(TortureConnection.fileSize - length), using: &rng)
        let payload = ByteView(UnsafeRawBufferPointer(rebasing: patterns[file][offset..<(offset + length)]))
        let bytes = c.client.encoded(.write(fid: fid, offset: UInt64(offset), data: payload), tag: Self.placeholderTag)
        request(c, bytes, label: "Twrite fid \(fid) offset \(offset) length \(length)") { instance in
            let tag = instance.tag
            instance.validate = { response in
                if case let .write(count) = response, count == UInt32(length) { return nil }
                return "expected Rwrite(\(length)), got \(describe(response))"
            }
            instance.onResolve = { response in
                c.writes.append(.init(file: file, offset: offset, length: length, tag: tag, performed: response != nil))
            }
        }
    }

    /// Tfsync of a regular file with dirty data: slow (the disk), never abortable once running.
    mutating func fsync(_ c: TortureConnection) {
        let fid = TortureConnection.fileFids[Int.random(in: 0..<2, using: &rng)]
        let bytes = c.client.encoded(.fsync(fid: fid, datasync: UInt32.random(in: 0...1, using: &rng)), tag: Self.placeholderTag)
        request(c, bytes, label: "Tfsync fid \(fid)") { instance in
            instance.validate = { response in
                if case .fsync = response { return nil }
                return "expected Rfsync, got \(describe(response))"
            }
        }
    }

    mutating func readFifoA(_ c: TortureConnection) {
        let count = Int.random(in: 0..<100, using: &rng) < 40 ? 128 * 1024 : Int.random(in: 64...4096, using: &rng)
        let bytes = c.client.encoded(.read(fid: TortureConnection.fifoAFid, offset: 0, count: UInt32(count)), tag: Self.placeholderTag)
        c.fifoAReads += 1
        request(c, bytes, label: "Tread of empty fifoA count \(count)", mustFlush: true) { instance in
            instance.mustNotReply = true
        }
    }

    mutating func readFifoB(_ c: TortureConnection) {
        // Counts beyond a small reply buffer too: a FIFO read may answer short.
        let count = Int.random(in: 0..<100, using: &rng) < 20 ? Int.random(in: 8193...131072, using: &rng) : Int.random(in: 1...8192, using: &rng)
        let bytes = c.client.encoded(.read(fid: TortureConnection.fifoBFid, offset: 0, count: UInt32(count)), tag: Self.placeholderTag)
        request(c, bytes, label: "Tread fifoB count \(count)", mustFlush: true) { instance in
            instance.validate = { response in
                guard case let .read(data) = response else { return "expected Rread, got \(describe(response))" }
                if data.count == 0 || data.count > count { return "Rread of \(data.count) bytes from a FIFO for count \(count)" }
                for byte in data where byte != 0x5A { return "fifoB yielded byte \(byte), never written" }
                return nil
            }
            instance.onResolve = { response in
                if let response, case let .read(data) = response { c.fifoBRead += data.count }
            }
        }
    }

    mutating func writeFifoB(_ c: TortureConnection) {
        let length = Int.random(in: 1...4096, using: &rng)  // atomic: at most PIPE_BUF
        guard c.fifoBWritten + c.fifoBWriteInFlight - c.fifoBRead + length <= 32 * 1024 else { return }
        let payload = ByteView(UnsafeRawBufferPointer(rebasing: fifoPayload[0..<length]))
        let bytes = c.client.encoded(.write(fid: TortureConnection.fifoBFid, offset: 0, data: payload), tag: Self.placeholderTag)
        c.fifoBWriteInFlight += length
        request(c, bytes, label: "Twrite fifoB length \(length)") { instance in
            instance.validate = { response in
                if case let .write(count) = response, count == UInt32(length) { return nil }
                return "expected Rwrite(\(length)) on a FIFO with room, got \(describe(response))"
            }
            instance.onResolve = { response in
                c.fifoBWriteInFlight -= length
                if let response, case let .write(count) = response { c.fifoBWritten += Int(count) }
            }
        }
    }

    mutating func lockConflict(_ c: TortureConnection) {
        let blockingFlag = Bool.random(using: &rng) ? LockFlags.block : 0
        let fields = LockFields(type: LockType.write, flags: blockingFlag, start: 0, length: 0, processID: 77, clientID: c.clientID)
        let bytes = c.client.encoded(.lock(fid: TortureConnection.lockContenderFid, fields), tag: Self.placeholderTag)
        c.lockConflicts += 1
        request(c, bytes, label: "Tlock conflicting\(blockingFlag != 0 ? " (P9_LOCK_FLAGS_BLOCK)" : "")") { instance in
            // (How long it takes here is mostly the queue: conflictingLockIsAnsweredBlockedAtOnce
            // times it with an idle worker.)
            instance.validate = { response in
                guard case let .lock(status) = response else { return "expected Rlock, got \(describe(response))" }
                if status != LockStatus.blocked { return "Rlock status \(status) for a conflicting lock; expected BLOCKED (1)" }
                return nil
            }
        }
    }

    mutating func openFifoC(_ c: TortureConnection) {
        guard !c.openInFlight,
              let fid = c.temps.filter({ $0.value.state == .live && $0.value.isFifo && !$0.value.opened }).keys.sorted().randomElement(using: &rng)
        else { return }
        let flags = Bool.random(using: &rng) ? OpenFlags.readOnly : OpenFlags.writeOnly
        let bytes = c.client.encoded(.lopen(fid: fid, flags: flags), tag: Self.placeholderTag)
        let previous = c.temps[fid]!
        c.temps[fid]!.state = .busy
        c.openInFlight = true
        c.fifoOpens += 1
        request(c, bytes, label: "Tlopen fid \(fid) of fifoC \(flags == OpenFlags.readOnly ? "O_RDONLY" : "O_WRONLY") with no peer", mustFlush: true) { instance in
            instance.mustNotReply = true
            instance.onResolve = { response in
                c.openInFlight = false
                c.temps[fid] = previous
                if let response, case .lopen = response { c.temps[fid]!.opened = true }
            }
        }
    }

    // MARK: The end

    mutating func finish(stalled: Bool) {
        // Flush whatever is still waiting on the outside world, then wait for quiet.
        for c in connections where !c.dead {
            c.scheduled.removeAll()
            for instance in c.ledger.unresolved() where !instance.isFlush && !instance.flushers.contains(where: { $0.outcome == .pending }) {
                flush(c, oldtag: instance.tag)
            }
        }
        var quiet = waitForQuiet(limit: .seconds(5))
        if !quiet {
            for c in connections where !c.ledger.unresolved().isEmpty {
                c.ledger.issue("seed \(seed): still unanswered 5 s after the last Tflushes: \(c.ledger.describeUnresolved())", tags: Set(c.ledger.unresolved().map(\.tag)))
            }
            // Unstick the server so that the rest can be checked: data for every FIFO read, a
            // peer for every FIFO open.
            recovered = true
            var feeders: [Int32] = []
            var peers: [Int32] = []
            for c in connections {
                for fifo in ["fifoA", "fifoB"] {
                    let fd = open(server("\(c.directory)/\(fifo)"), O_WRONLY | O_NONBLOCK | O_CLOEXEC)
                    if fd >= 0 { feeders.append(fd) }
                }
                let fd = open(server("\(c.directory)/fifoC"), O_RDWR | O_NONBLOCK | O_CLOEXEC)
                if fd >= 0 { peers.append(fd) }
            }
            let chunk = [UInt8](repeating: 0x5A, count: 16384)
            for _ in 0..<30 where !quiet {
                for fd in feeders { _ = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
                quiet = waitForQuiet(limit: .milliseconds(100))
            }
            for fd in feeders + peers { Glibc.close(fd) }
            if !quiet {
                Issue.record("seed \(seed): the server did not answer everything even after the FIFOs got data and peers; resource checks skipped. Pending: \(pendingSummary())")
                return
            }
        }
        // Nothing more may arrive.
        let lateDeadline = clock.now + .milliseconds(200)
        while clock.now < lateDeadline { drain(waitMilliseconds: 20) }
        if stalled {
            print("flush torture: the run stalled; data, fid and descriptor checks skipped")
            return
        }
        checkData()
        checkFidsAndDescriptors()
    }

    mutating func waitForQuiet(limit: Duration) -> Bool {
        let deadline = clock.now + limit
        while clock.now < deadline {
            if connections.allSatisfy({ $0.dead || $0.ledger.unresolved().isEmpty }) { return true }
            drain(waitMilliseconds: 20)
        }
        return connections.allSatisfy { $0.dead || $0.ledger.unresolved().isEmpty }
    }

    func checkData() {
        for c in connections where !c.dead {
            // FIFO B: every byte acknowledged by an Rwrite was read by an Rread or is still there;
            // a flushed read consumed nothing, a flushed write wrote nothing.
            if !recovered {
                var leftover = 0
                let fd = open(server("\(c.directory)/fifoB"), O_RDONLY | O_NONBLOCK | O_CLOEXEC)
                if fd >= 0 {
                    var chunk = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                        if n <= 0 { break }
                        leftover += n
                    }
                    Glibc.close(fd)
                }
                if c.fifoBWritten != c.fifoBRead + leftover {
                    c.ledger.issue("fifoB: Rwrite acknowledged \(c.fifoBWritten) bytes, Rread returned \(c.fifoBRead), \(leftover) left in the pipe: a flushed (unanswered) read consumed data or a flushed write wrote some", tags: [])
                }
            }
            // Regular files: acknowledged writes are there; bytes only flushed writes covered
            // are still holes.
            for file in 0..<2 {
                guard let disk = fileBytes(server("\(c.directory)/f\(file)")) else {
                    c.ledger.issue("cannot read f\(file)", tags: [])
                    continue
                }
                var acked = [Bool](repeating: false, count: TortureConnection.fileSize)
                var abortedBy = [UInt16?](repeating: nil, count: TortureConnection.fileSize)
                for w in c.writes where w.file == file {
                    for p in w.offset..<(w.offset + w.length) {
                        if w.performed { acked[p] = true } else { abortedBy[p] = w.tag }
                    }
                }
                var problems = 0
                for p in 0..<TortureConnection.fileSize where problems < 3 {
                    let byte = p < disk.count ? disk[p] : 0
                    if acked[p] && byte != tortureByte(file: file, position: p) {
                        c.ledger.issue("f\(file) byte \(p) is \(byte) although a Twrite covering it was acknowledged", tags: [])
                        problems += 1
                    } else if !acked[p], let tag = abortedBy[p], byte != 0 {
                        c.ledger.issue("f\(file) byte \(p) was written, yet the only Twrite covering it (tag \(tag)) was flushed without reply", tags: [tag])
                        problems += 1
                    }
                }
            }
        }
    }

    mutating func checkFidsAndDescriptors() {
        var fidProblems = 0
        for c in connections where !c.dead {
            c.client.setTimeout(seconds: 5)
            var fids: [UInt32] = [TortureConnection.dirFid] + TortureConnection.fileFids
            fids += [TortureConnection.fifoAFid, TortureConnection.fifoBFid, TortureConnection.lockHolderFid, TortureConnection.lockContenderFid]
            fids += c.temps.filter { $0.value.state == .live }.keys.sorted()
            for fid in fids {
                do { try c.client.clunk(fid) } catch {
                    c.ledger.issue("Tclunk of live fid \(fid) at the end: \(error)", tags: [])
                    fidProblems += 1
                }
            }
            // Every fid number the run used must be free again: a fid that a flushed request left
            // behind makes this Tattach fail.
            let all: [UInt32] = [TortureConnection.dirFid] + TortureConnection.fileFids
                + [TortureConnection.fifoAFid, TortureConnection.fifoBFid, TortureConnection.lockHolderFid, TortureConnection.lockContenderFid]
                + Array(TortureConnection.tempFids)
            for fid in all {
                do {
                    try c.client.attach(fid: fid)
                    try c.client.clunk(fid)
                } catch {
                    c.ledger.issue("Tattach on fid \(fid), which the test holds free, failed with \(error): the server leaked it", tags: [])
                    fidProblems += 1
                }
            }
            do { try c.client.clunk(0) } catch { c.ledger.issue("Tclunk of the root fid: \(error)", tags: []) }
        }
        for c in connections { c.client.close() }
        #expect(waitForConnectionCount(server, 0), "connections still open in the server after every client closed: \(server.server.connectionCount)")
        expectDescriptorsBack(to: baseline, of: server, "flush torture (seed \(seed))")
        let fifoLeft = serverDescriptors(server).values.filter { $0.contains("/fifo") }
        #expect(fifoLeft.isEmpty, "FIFO descriptors still open in the server: \(fifoLeft.sorted())")
        print("flush torture: fid problems \(fidProblems); process descriptors \(processBaseline) before, \(processDescriptorCount()) after (other tests run in parallel in this process); the server's own: \(baseline.count) before, \(serverDescriptors(server).count) after")
    }

    func report(elapsed: Duration, total: Duration) {
        let ledgers = connections.map(\.ledger)
        func sum(_ key: (FlushLedger) -> Int) -> Int { ledgers.reduce(0) { $0 + key($1) } }
        let maxFlush = ledgers.map(\.maxFlushLatency).max() ?? .zero
        let maxAbort = ledgers.map(\.maxAbortLatency).max() ?? .zero
        let aborted = sum(\.aborted)
        let meanAbort = aborted == 0 ? Duration.zero : ledgers.reduce(Duration.zero) { $0 + $1.meanAbortLatency * $1.aborted } / aborted
        let writes = connections.reduce(0) { $0 + $1.writes.count }
        let flushedWrites = connections.reduce(0) { $0 + $1.writes.filter { !$0.performed }.count }
        print("""
            flush torture: seed \(seed), \(connections.count) connections, \(ms(elapsed)) generating, \(ms(total)) in all
              requests \(sum(\.requests)), flushes \(sum(\.flushes)) (of free/answered tags \(sum(\.flushesOfFreeTags)), repeated \(sum(\.repeatedFlushes)), flushes of flushes \(sum(\.flushesOfFlushes)))
              aborted (Rflush, no reply) \(aborted), replied-then-flushed \(sum(\.repliedThenFlushed)), tag reuses \(sum(\.tagReuses))
              FIFO-A reads \(connections.reduce(0) { $0 + $1.fifoAReads }), FIFO opens with no peer \(connections.reduce(0) { $0 + $1.fifoOpens }), conflicting Tlocks \(connections.reduce(0) { $0 + $1.lockConflicts }), regular Twrites \(writes) (flushed unperformed \(flushedWrites))
              Rflush latency: max \(ms(maxFlush)); of aborted requests: mean \(ms(meanAbort)), max \(ms(maxAbort)); issues \(sum(\.issues))\(recovered ? "; the run needed FIFO data to unstick" : "")
            """)
    }
}

/// The checker itself: each violation the torture looks for is caught (synthetic wire events).
@Suite struct FlushLedgerTests {
    func ledger() -> (FlushLedger, () -> [String]) {
        let ledger = FlushLedger(name: "synthetic", tags: 1...10)
        ledger.sink = { _, _ in }  // collected in issueMessages instead
        return (ledger, { ledger.issueMessages })
    }

    @Test func replyAfterItsRflushIsCaught() {
        let (l, issues) = ledger()
        l.sentRequest(tag: 1, label: "Tclunk")
        l.sentFlush(tag: 2, oldtag: 1)
        l.received(RMessage(tag: 2, response: .flush))
        #expect(issues().isEmpty)
        l.received(RMessage(tag: 1, response: .clunk))
        #expect(issues().count == 1 && issues()[0].contains("not in flight") && issues()[0].contains("flushed (no reply) by Rflush tag 2"), "\(issues())")
        #expect(l.aborted == 1)
    }

    @Test func replyAfterRflushWhileTheTagIsStillReservedIsCaught() {
        let (l, issues) = ledger()
        l.sentRequest(tag: 1, label: "Tclunk")
        l.sentFlush(tag: 2, oldtag: 1)
        l.sentFlush(tag: 3, oldtag: 1)
        l.received(RMessage(tag: 2, response: .flush))
        l.received(RMessage(tag: 1, response: .clunk))
        #expect(issues().count == 1 && issues()[0].contains("second reply"), "\(issues())")
    }

    @Test func rlerrorForATflushIsCaught() {
        let (l, issues) = ledger()
        l.sentFlush(tag: 4, oldtag: 9)
        l.received(RMessage(tag: 4, response: .lerror(ecode: 22)))
        #expect(issues().count == 1 && issues()[0].contains("answered with Rlerror(22)"), "\(issues())")
    }

    @Test func rflushesOutOfOrderAreCaught() {
        let (l, issues) = ledger()
        l.sentRequest(tag: 1, label: "Tread")
        l.sentFlush(tag: 2, oldtag: 1)
        l.sentFlush(tag: 3, oldtag: 1)
        l.received(RMessage(tag: 3, response: .flush))
        #expect(issues().contains { $0.contains("Rflush tag 3 arrived before Rflush tag 2") }, "\(issues())")
    }

    @Test func flushOfAFlushAnsweredFirstIsCaught() {
        let (l, issues) = ledger()
        l.sentRequest(tag: 1, label: "Tread")
        l.sentFlush(tag: 2, oldtag: 1)
        l.sentFlush(tag: 3, oldtag: 2)
        l.received(RMessage(tag: 3, response: .flush))
        #expect(issues().contains { $0.contains("a flush of Tflush tag 2") }, "\(issues())")
    }

    @Test func aReplyForAnUnusedTagAndMissingRepliesAreCaught() {
        let (l, issues) = ledger()
        l.received(RMessage(tag: 7, response: .clunk))
        #expect(issues().count == 1 && issues()[0].contains("never used"), "\(issues())")
        l.sentRequest(tag: 1, label: "Tread")
        #expect(l.unresolved().map(\.tag) == [1])
    }

    @Test func validReplyThenRflushAndTagReuse() {
        let (l, issues) = ledger()
        l.sentRequest(tag: 1, label: "Tclunk")
        l.sentFlush(tag: 2, oldtag: 1)
        l.received(RMessage(tag: 1, response: .clunk))
        #expect(!l.isFree(1), "tag 1 is free before the Rflush that names it")
        l.received(RMessage(tag: 2, response: .flush))
        #expect(l.isFree(1) && l.isFree(2))
        l.sentRequest(tag: 1, label: "Tclunk again")
        l.received(RMessage(tag: 1, response: .clunk))
        #expect(issues().isEmpty, "\(issues())")
        #expect(l.repliedThenFlushed == 1 && l.aborted == 0 && l.tagReuses == 1)
    }
}
