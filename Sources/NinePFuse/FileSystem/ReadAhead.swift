import NinePClient
import Synchronization

/// Read-ahead of sequential READs (docs/FUSE.md, "Read-ahead").
///
/// Without FUSE_ASYNC_READ the kernel sends one READ at a time per file and waits for its
/// reply, so every stage of a sequential read (the server's pread and send, our receive, the
/// kernel's copy into the page cache, the reader's copy out of it) ran one after another, with
/// the other core idle. Here, when a handle's READs follow one another (a READ starts where
/// the handle's last one ended), the READ that follows is asked of the server at once, by a
/// lane: a fixed buffer as large as a slot's reply buffer and a task of its own that sends the
/// Tread and receives its data into the buffer, behind the out header's room. The next READ
/// at exactly that offset (same node, same handle, no larger) takes the lane, waiting for its
/// Tread if it is still out, and is answered without a copy: the lane's buffer and the slot's
/// reply buffer are exchanged (`FuseSlot.exchangeReply`).
///
/// Correctness: a WRITE, SETATTR, FSYNC or OPEN of the node marks its lanes stale, before and
/// again after the request (a Tread sent while a Twrite was out may have been served before
/// it); RELEASE of the handle too. A stale lane is never served (a READ waiting on it reads
/// itself). A result older than `maxAge` (the attribute timeout: what the kernel's own cache
/// of the file may be behind by) is dropped unclaimed. Not used with `cache=none`, for
/// O_DIRECT opens, or over a proven-local (localio) connection.
///
/// Interrupts: an INTERRUPT of a READ waiting on a lane (`interrupted`) flushes the lane's
/// Tread (its task's own `CallCanceller`) and answers the READ EINTR at once; the lane's
/// result is dropped when it settles.
///
/// Bounded: `lanes` buffers (2 by default, about 1 MiB each), allocated and touched at start;
/// a read-ahead is started only while more than `reservedSlots` of the client's request slots
/// are free, so the workers' own calls never wait for one. Nothing is allocated per READ: the
/// lanes' tasks wait for work in their own frames, woken through their continuations.
final class ReadAhead: Sendable {
    /// What a lane holds or fetches: `size` bytes at `offset` of handle `fh` of `node`.
    struct Key: Equatable {
        var node: UInt64 = 0
        var fh: UInt64 = 0
        var offset: UInt64 = 0
        var size: Int = 0
    }

    enum Phase {
        /// Free: its task waits for work.
        case idle
        /// Its Tread is being sent or awaited.
        case fetching
        /// Its data (or failure) is in, not taken yet.
        case ready
    }

    /// How a READ waiting on a lane is woken.
    enum Wake {
        /// The lane's Tread ended (or the lane changed): look at it again.
        case settled
        /// The READ was interrupted: EINTR.
        case interrupted
    }

    /// A lane's buffer, handed out of the lock. `@unchecked Sendable`: a buffer belongs to one
    /// owner at a time (the lane's task while it fetches, the lock while the lane is ready or
    /// idle, a slot after an exchange) and lives until its owner ends.
    struct Buffer: @unchecked Sendable {
        let bytes: UnsafeMutableRawBufferPointer
    }

    struct Lane {
        var phase = Phase.idle
        var key = Key()
        /// The node changed, or the handle went, since the Tread was sent: never served.
        var stale = false
        /// Work given to the task and not picked up yet.
        var workPending = false
        /// The file to read (only while fetching).
        var file: RemoteFile? = nil
        /// Bytes read, behind the out header's room; -1 when the read failed.
        var bytes = 0
        var completedAt = ContinuousClock.now
        /// The READ (`unique`) waiting on this lane, or that it was handed to when it settled.
        var claimant: UInt64 = 0
        var waiter: UnsafeContinuation<Wake, Never>? = nil
        var waiterCanceller: CallCanceller? = nil
        /// The lane's task, waiting for work.
        var task: UnsafeContinuation<Bool, Never>? = nil
        var buffer: Buffer
    }

    struct State {
        var lanes: [Lane]
        /// Recent READs, a ring: the handle and where its READ ended. A READ that starts where
        /// its handle's last one ended is sequential.
        var recentHandles: [UInt64]
        var recentEnds: [UInt64]
        var nextRecent = 0
        var stopped = false
    }

    /// Counts for the status line and tests: read-aheads started, READs served from a lane
    /// (of which after waiting for its Tread), and lanes dropped unused (stale, failed, too old).
    let started = Atomic<Int>(0)
    let served = Atomic<Int>(0)
    let servedAfterWaiting = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)

    /// The lanes' tasks' own cancellers: an interrupt flushes a lane's Tread through them.
    let cancellers: [CallCanceller]
    private let state: Mutex<State>
    let client: NinePClient
    /// Bytes of each lane's buffer (a slot's reply buffer: out header and the largest READ).
    let bufferBytes: Int
    let maxAge: Duration
    /// READs smaller than this (small files, the kernel's first small windows) start none.
    static let minimumSize = 64 * 1024
    /// Request slots a read-ahead leaves free for the workers' own calls.
    static let reservedSlots = 2
    static let recentCount = 16
    static let headerBytes = FuseOutHeader.wireSize

    init(lanes: Int, bufferBytes: Int, client: NinePClient, maxAge: Duration) {
        precondition(lanes > 0 && bufferBytes > Self.headerBytes)
        self.client = client
        self.bufferBytes = bufferBytes
        self.maxAge = maxAge
        cancellers = (0..<lanes).map { _ in CallCanceller() }
        let made = (0..<lanes).map { _ -> Lane in
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferBytes, alignment: 4096)
            // Touched now, as the slots are: no page is faulted in on the request path.
            bytes.initializeMemory(as: UInt8.self, repeating: 0)
            return Lane(buffer: Buffer(bytes: bytes))
        }
        state = Mutex(State(lanes: made, recentHandles: [UInt64](repeating: 0, count: Self.recentCount), recentEnds: [UInt64](repeating: 0, count: Self.recentCount)))
        for index in 0..<lanes {
            Task(executorPreference: client.executor) { [self] in await runLane(index) }
        }
    }

    deinit {
        state.withLock { state in
            for index in 0..<state.lanes.count { state.lanes[index].buffer.bytes.deallocate() }
        }
    }

    var laneCount: Int { cancellers.count }

    /// Ends the lanes' tasks (each once its Tread, if any, has settled).
    func stop() {
        for index in 0..<laneCount {
            let task = state.withLock { state -> UnsafeContinuation<Bool, Never>? in
                state.stopped = true
                defer { state.lanes[index].task = nil }
                return state.lanes[index].task
            }
            task?.resume(returning: false)
        }
    }

    // MARK: READ

    /// A READ of `size` bytes at `offset` through handle `fh` of `node` (`file`): when a lane
    /// holds or fetches exactly that, waits for it if need be and exchanges its buffer with the
    /// slot's reply buffer; returns how many bytes follow the out header there. Nil: no lane
    /// has it, the caller reads itself. Starts the read-ahead of the next `size` bytes when the
    /// handle's READs are sequential. Throws CancellationError when interrupted.
    func serve(_ slot: FuseSlot, unique: UInt64, node: UInt64, fh: UInt64, offset: UInt64, size: Int, file: RemoteFile) async throws -> Int? {
        let canceller = CallCanceller.current
        let now = ContinuousClock.now
        let wanted = Key(node: node, fh: fh, offset: offset, size: size)
        var waitOn = -1
        var served: Int? = nil
        let started = state.withLock { state -> UnsafeContinuation<Bool, Never>? in
            guard !state.stopped else { return nil }
            var sequential = false
            for index in 0..<state.lanes.count where Self.holds(state.lanes[index], wanted) && state.lanes[index].claimant == 0 {
                sequential = true
                if state.lanes[index].phase == .fetching {
                    waitOn = index
                } else if state.lanes[index].bytes < 0 || now - state.lanes[index].completedAt > maxAge {
                    // Failed (the READ reads itself and sees why) or too old to trust.
                    state.lanes[index].phase = .idle
                } else {
                    served = Self.take(&state.lanes[index], into: slot, size: size)
                }
                if state.lanes[index].phase == .idle && served == nil { dropped.add(1, ordering: .relaxed) }
                break
            }
            sequential = Self.noteRead(&state, fh: fh, offset: offset, end: offset + UInt64(size)) || sequential
            guard sequential, size >= Self.minimumSize, size + Self.headerBytes <= bufferBytes else { return nil }
            return startReadAhead(&state, Key(node: node, fh: fh, offset: offset + UInt64(size), size: size), file: file)
        }
        started?.resume(returning: true)
        if served != nil { self.served.add(1, ordering: .relaxed) }
        if served != nil || waitOn < 0 { return served }
        let n = try await wait(on: waitOn, for: wanted, unique: unique, slot: slot, canceller: canceller)
        if n != nil {
            self.served.add(1, ordering: .relaxed)
            servedAfterWaiting.add(1, ordering: .relaxed)
        }
        return n
    }

    /// Waits for lane `index`'s Tread to settle, then takes its data (nil: it failed, or went
    /// stale, and the caller reads itself).
    private func wait(on index: Int, for wanted: Key, unique: UInt64, slot: FuseSlot, canceller: CallCanceller?) async throws -> Int? {
        let wake = await withUnsafeContinuation { (continuation: UnsafeContinuation<Wake, Never>) in
            let now = state.withLock { state -> Wake? in
                let lane = state.lanes[index]
                // Settled (or handed over) meanwhile: look again below.
                guard lane.phase == .fetching, Self.holds(lane, wanted), lane.claimant == 0 else { return .settled }
                // An INTERRUPT that came before this wait was registered: it found nothing here.
                if canceller?.isCancelled == true { return .interrupted }
                state.lanes[index].claimant = unique
                state.lanes[index].waiter = continuation
                state.lanes[index].waiterCanceller = canceller
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
        if wake == .interrupted { throw CancellationError() }
        return state.withLock { state -> Int? in
            let lane = state.lanes[index]
            guard lane.phase == .ready, lane.key == Self.keyOf(lane, for: wanted) else { return nil }
            if lane.claimant == unique {
                // Handed to this READ: it frees the lane whatever it holds.
                if lane.stale || lane.bytes < 0 {
                    state.lanes[index].phase = .idle
                    state.lanes[index].claimant = 0
                    return nil
                }
                return Self.take(&state.lanes[index], into: slot, size: wanted.size)
            }
            // Settled before this READ waited on it.
            guard lane.claimant == 0, Self.holds(lane, wanted), lane.bytes >= 0 else { return nil }
            return Self.take(&state.lanes[index], into: slot, size: wanted.size)
        }
    }

    /// Whether `lane` holds (or fetches) the data `wanted` asks for: same node and handle,
    /// same offset, at least as many bytes asked, and nothing changed since.
    private static func holds(_ lane: Lane, _ wanted: Key) -> Bool {
        lane.phase != .idle && !lane.stale && lane.key.fh == wanted.fh && lane.key.node == wanted.node
            && lane.key.offset == wanted.offset && lane.key.size >= wanted.size
    }

    /// `wanted` with the lane's size when the lane is for the same node, handle and offset
    /// (whatever its state): compared with the lane's key, whether the lane is that READ's.
    private static func keyOf(_ lane: Lane, for wanted: Key) -> Key {
        Key(node: wanted.node, fh: wanted.fh, offset: wanted.offset, size: lane.key.size)
    }

    /// Hands a ready lane's data to `slot` (its buffer exchanged with the slot's reply buffer,
    /// or copied when they differ in size) and frees the lane. Returns the bytes served.
    private static func take(_ lane: inout Lane, into slot: FuseSlot, size: Int) -> Int {
        let n = min(lane.bytes, size)
        if lane.buffer.bytes.count == slot.reply.count {
            lane.buffer = Buffer(bytes: slot.exchangeReply(lane.buffer.bytes))
        } else {
            UnsafeMutableRawBufferPointer(rebasing: slot.reply[headerBytes..<(headerBytes + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: lane.buffer.bytes[headerBytes..<(headerBytes + n)]))
        }
        lane.phase = .idle
        lane.claimant = 0
        return n
    }

    /// Records a READ of `fh` ending at `end`; true when it starts where the handle's last
    /// READ ended.
    private static func noteRead(_ state: inout State, fh: UInt64, offset: UInt64, end: UInt64) -> Bool {
        for index in 0..<state.recentHandles.count where state.recentHandles[index] == fh {
            let sequential = state.recentEnds[index] == offset
            state.recentEnds[index] = end
            return sequential
        }
        state.recentHandles[state.nextRecent] = fh
        state.recentEnds[state.nextRecent] = end
        state.nextRecent = (state.nextRecent + 1) % state.recentHandles.count
        return false
    }

    /// Gives `next` to an idle lane, unless one has it already, none is idle, or the client
    /// has too few request slots free. Returns the lane's task to wake (outside the lock).
    private func startReadAhead(_ state: inout State, _ next: Key, file: RemoteFile) -> UnsafeContinuation<Bool, Never>? {
        var idle = -1
        for index in 0..<state.lanes.count {
            if Self.holds(state.lanes[index], next) { return nil }
            if idle < 0 && state.lanes[index].phase == .idle { idle = index }
        }
        guard idle >= 0, client.idleRequestSlots > Self.reservedSlots else { return nil }
        state.lanes[idle].phase = .fetching
        state.lanes[idle].key = next
        state.lanes[idle].stale = false
        state.lanes[idle].bytes = 0
        state.lanes[idle].claimant = 0
        state.lanes[idle].file = file
        state.lanes[idle].workPending = true
        // Under the lock: an interrupt's cancel of this lane (also under it) is for this work.
        cancellers[idle].reset()
        started.add(1, ordering: .relaxed)
        defer { state.lanes[idle].task = nil }
        return state.lanes[idle].task
    }

    // MARK: Changes

    /// A WRITE, SETATTR, FSYNC or OPEN of `node` begins or ends: its lanes are stale.
    func invalidate(node: UInt64) {
        state.withLock { state in
            for index in 0..<state.lanes.count where state.lanes[index].phase != .idle && state.lanes[index].key.node == node {
                markStale(&state.lanes[index])
            }
        }
    }

    /// RELEASE of handle `fh`: its lanes are stale.
    func released(fh: UInt64) {
        state.withLock { state in
            for index in 0..<state.lanes.count where state.lanes[index].phase != .idle && state.lanes[index].key.fh == fh {
                markStale(&state.lanes[index])
            }
        }
    }

    private func markStale(_ lane: inout Lane) {
        lane.stale = true
        // Ready and nobody's: free now. Fetching: freed when it settles; a claimant frees it.
        if lane.phase == .ready && lane.claimant == 0 {
            lane.phase = .idle
            dropped.add(1, ordering: .relaxed)
        }
    }

    /// For the status line.
    var summary: String {
        ", read-ahead: \(started.load(ordering: .relaxed)) started, \(served.load(ordering: .relaxed)) READs served from it (\(servedAfterWaiting.load(ordering: .relaxed)) after waiting), \(dropped.load(ordering: .relaxed)) dropped"
    }

    /// An INTERRUPT cancelled some worker's canceller: a READ of it waiting on a lane is
    /// answered EINTR now, and the lane's Tread is flushed (Tflush; its result is dropped).
    func interrupted() {
        for index in 0..<laneCount {
            let waiter = state.withLock { state -> UnsafeContinuation<Wake, Never>? in
                guard let waiter = state.lanes[index].waiter, state.lanes[index].waiterCanceller?.isCancelled == true else { return nil }
                state.lanes[index].waiter = nil
                state.lanes[index].waiterCanceller = nil
                state.lanes[index].claimant = 0
                state.lanes[index].stale = true
                // Lock order: this lock, the canceller's, the connection's.
                cancellers[index].cancel()
                return waiter
            }
            waiter?.resume(returning: .interrupted)
        }
    }

    // MARK: Lanes' tasks

    private func runLane(_ index: Int) async {
        _ = await NinePFileSystem.growFrames(32)
        await CallCanceller.$current.withValue(cancellers[index]) {
            while await nextWork(index) {
                guard let (file, key, buffer) = pickUpWork(index) else { continue }
                let bytes = await fetch(file, key, buffer)
                settle(index, bytes: bytes)
            }
        }
    }

    /// Waits until the lane is given work (true) or the read-ahead stops (false).
    private func nextWork(_ index: Int) async -> Bool {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Bool, Never>) in
            let now = state.withLock { state -> Bool? in
                if state.stopped { return false }
                if state.lanes[index].workPending { return true }
                state.lanes[index].task = continuation
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    private func pickUpWork(_ index: Int) -> (RemoteFile, Key, Buffer)? {
        state.withLock { state in
            guard state.lanes[index].workPending, let file = state.lanes[index].file else { return nil }
            state.lanes[index].workPending = false
            return (file, state.lanes[index].key, state.lanes[index].buffer)
        }
    }

    /// Treads of `key.size` bytes at `key.offset` into `buffer`, behind the header's room, until
    /// all or a short read; -1 when one fails (or is flushed).
    private func fetch(_ file: RemoteFile, _ key: Key, _ buffer: Buffer) async -> Int {
        var done = 0
        while done < key.size {
            let chunk = min(key.size - done, file.ioSize)
            let start = Self.headerBytes + done
            let n: Int
            do {
                n = try await file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[start..<(start + chunk)]), at: key.offset + UInt64(done))
            } catch {
                return -1
            }
            done += n
            if n < chunk { break }
        }
        return done
    }

    /// The lane's Tread settled: handed to the READ waiting, kept for the next, or freed
    /// (stale or failed with nobody waiting).
    private func settle(_ index: Int, bytes: Int) {
        let waiter = state.withLock { state -> UnsafeContinuation<Wake, Never>? in
            state.lanes[index].file = nil
            state.lanes[index].bytes = bytes
            state.lanes[index].completedAt = ContinuousClock.now
            let waiter = state.lanes[index].waiter
            state.lanes[index].waiter = nil
            state.lanes[index].waiterCanceller = nil
            if waiter != nil {
                state.lanes[index].phase = .ready
            } else if state.lanes[index].stale || bytes < 0 {
                dropped.add(1, ordering: .relaxed)
                state.lanes[index].phase = .idle
                state.lanes[index].claimant = 0
            } else {
                state.lanes[index].phase = .ready
            }
            return waiter
        }
        waiter?.resume(returning: .settled)
    }
}
