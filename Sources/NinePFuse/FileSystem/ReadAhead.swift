import NinePClient
import Synchronization

/// Read-ahead of sequential READs (docs/FUSE.md, "Read-ahead").
///
/// Without FUSE_ASYNC_READ the kernel sends one READ at a time per file and waits for its
/// reply, so every stage of a sequential read (the server's pread and send, our receive, the
/// kernel's copy into the page cache, the reader's copy out of it) ran one after another, with
/// the other core idle. Here, when a handle's READs follow one another (a READ starts where
/// the handle's last one ended), the READ that follows is asked of the server at once, by a
/// lane: a task of its own that sends the Tread and keeps its reply where it arrived, in the
/// 9P client's message buffer (`RemoteFile.readKept`: the request slot stays taken). The next
/// READ at exactly that offset (same node, same handle, no larger) takes the lane, waiting for
/// its Tread if it is still out, and is answered with the data from there: the slot's
/// `payload`, written after the out header in one writev(2), with no copy in this process;
/// the 9P request slot is given back once the reply is written (`replied`).
///
/// Correctness: a WRITE, SETATTR, FSYNC or OPEN of the node marks its lanes stale, before and
/// again after the request (a Tread sent while a Twrite was out may have been served before
/// it); RELEASE of the handle too. A stale lane is never served (a READ waiting on it reads
/// itself). A result older than `maxAge` (the attribute timeout: what the kernel's own cache
/// of the file may be behind by) is dropped unclaimed. Not used with `cache=none`, for
/// O_DIRECT opens, for files read through a localio grant, or when passthrough may be in use
/// (its writes bypass this daemon).
///
/// Interrupts: an INTERRUPT of a READ waiting on a lane (`interrupted`) flushes the lane's
/// Tread (through the lane task's own `CallCanceller`) and answers the READ EINTR at once; the
/// lane's result is dropped when it settles.
///
/// Depth: a sequential READ starts the Treads of the next three READs (`depth`), lanes
/// permitting; a READ elsewhere in the file gives back the handle's lanes it shows will not be
/// asked for (`passOver`: behind it, or beyond the reach of the read-ahead, as past the end of
/// the file once the reader starts over).
///
/// Bounded: `lanes` reads ahead at most (3 by default), each holding one of the client's
/// request slots and its msize buffer while its data waits (the mount adds one slot per lane);
/// one is started only while more than `reservedSlots` slots are free, so the workers' own
/// calls never wait for one. Nothing is allocated per READ: the lanes' tasks wait for work in
/// their own frames, woken through their continuations.
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

    struct Lane {
        var phase = Phase.idle
        var key = Key()
        /// The node changed, or the handle went, since the Tread was sent: never served.
        var stale = false
        /// Work given to the task and not picked up yet.
        var workPending = false
        /// The file to read (only while fetching).
        var file: RemoteFile? = nil
        /// The Tread's reply, kept in the client's message buffer, once in.
        var kept: KeptRead? = nil
        /// Bytes read; -1 when the read failed.
        var bytes = 0
        var completedAt = ContinuousClock.now
        /// The READ (`unique`) waiting on this lane, or that it was handed to when it settled.
        var claimant: UInt64 = 0
        var waiter: UnsafeContinuation<Wake, Never>? = nil
        var waiterCanceller: CallCanceller? = nil
        /// The lane's task, waiting for work.
        var task: UnsafeContinuation<Bool, Never>? = nil
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
    let maxAge: Duration
    /// READs smaller than this (small files, the kernel's first small windows) start none.
    static let minimumSize = 64 * 1024
    /// Request slots a read-ahead leaves free for the workers' own calls.
    static let reservedSlots = 2
    static let recentCount = 16
    /// READs fetched ahead of a sequential reader, at most (lanes permitting); `serve` starts
    /// them one by one.
    static let depth: UInt64 = 3

    /// Where a served READ's kept reply waits for its FUSE reply to be written.
    let keptReplies: KeptReplies

    init(lanes: Int, keptReplies: KeptReplies, client: NinePClient, maxAge: Duration) {
        precondition(lanes > 0)
        self.keptReplies = keptReplies
        self.client = client
        self.maxAge = maxAge
        cancellers = (0..<lanes).map { _ in CallCanceller() }
        state = Mutex(State(
            lanes: [Lane](repeating: Lane(), count: lanes),
            recentHandles: [UInt64](repeating: 0, count: Self.recentCount),
            recentEnds: [UInt64](repeating: 0, count: Self.recentCount)))
        for index in 0..<lanes {
            Task(executorPreference: client.executor) { [self] in await runLane(index) }
        }
    }

    var laneCount: Int { cancellers.count }

    /// Ends the lanes' tasks (each once its Tread, if any, has settled) and gives back what
    /// ready lanes hold.
    func stop() {
        for index in 0..<laneCount {
            let task = state.withLock { state -> UnsafeContinuation<Bool, Never>? in
                state.stopped = true
                if state.lanes[index].phase == .ready && state.lanes[index].claimant == 0 { free(&state.lanes[index]) }
                defer { state.lanes[index].task = nil }
                return state.lanes[index].task
            }
            task?.resume(returning: false)
        }
    }

    // MARK: READ

    /// A READ of `size` bytes at `offset` through handle `fh` of `node` (`file`): when a lane
    /// holds or fetches exactly that, waits for it if need be and makes its data the slot's
    /// `payload` (until `replied`); returns how many bytes that is. Nil: no lane has it, the
    /// caller reads itself. Starts the read-ahead of the next `size` bytes when the handle's
    /// READs are sequential. Throws CancellationError when interrupted.
    func serve(_ slot: FuseSlot, unique: UInt64, node: UInt64, fh: UInt64, offset: UInt64, size: Int, file: RemoteFile) async throws -> Int? {
        let canceller = CallCanceller.current
        let now = ContinuousClock.now
        let wanted = Key(node: node, fh: fh, offset: offset, size: size)
        let ioSize = file.ioSize
        var waitOn = -1
        var served: Int? = nil
        let started = state.withLock { state -> (UnsafeContinuation<Bool, Never>?, UnsafeContinuation<Bool, Never>?, UnsafeContinuation<Bool, Never>?) in
            guard !state.stopped else { return (nil, nil, nil) }
            passOver(&state, wanted)
            var sequential = false
            for index in 0..<state.lanes.count where Self.holds(state.lanes[index], wanted) && state.lanes[index].claimant == 0 {
                sequential = true
                if state.lanes[index].phase == .fetching {
                    waitOn = index
                } else if state.lanes[index].bytes < 0 || now - state.lanes[index].completedAt > maxAge {
                    // Failed (the READ reads itself and sees why) or too old to trust.
                    free(&state.lanes[index])
                    dropped.add(1, ordering: .relaxed)
                } else {
                    served = take(&state, index, into: slot, size: size)
                }
                break
            }
            sequential = Self.noteRead(&state, fh: fh, offset: offset, end: offset + UInt64(size)) || sequential
            guard sequential, size >= Self.minimumSize, size <= ioSize else { return (nil, nil, nil) }
            // The next `depth` (3) READs, while lanes are free: with one Tread ahead, half the
            // READs of a sequential fio run still waited for it (the server's pread and send and
            // our receive take about as long as the kernel's copies of one READ); with two, a
            // quarter; with three, one in twelve.
            let next = startReadAhead(&state, Key(node: node, fh: fh, offset: offset + UInt64(size), size: size), file: file)
            let second = startReadAhead(&state, Key(node: node, fh: fh, offset: offset + 2 * UInt64(size), size: size), file: file)
            let third = startReadAhead(&state, Key(node: node, fh: fh, offset: offset + 3 * UInt64(size), size: size), file: file)
            return (next, second, third)
        }
        started.0?.resume(returning: true)
        started.1?.resume(returning: true)
        started.2?.resume(returning: true)
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
            guard lane.phase == .ready, lane.key.fh == wanted.fh, lane.key.node == wanted.node, lane.key.offset == wanted.offset else { return nil }
            if lane.claimant == unique {
                // Handed to this READ: it frees the lane, whatever it holds.
                if lane.stale || lane.bytes < 0 {
                    free(&state.lanes[index])
                    dropped.add(1, ordering: .relaxed)
                    return nil
                }
                return take(&state, index, into: slot, size: wanted.size)
            }
            // Settled before this READ waited on it.
            guard lane.claimant == 0, Self.holds(lane, wanted), lane.bytes >= 0 else { return nil }
            return take(&state, index, into: slot, size: wanted.size)
        }
    }

    /// The handle's lanes that this READ shows will not be asked for: behind it, or further
    /// ahead than the read-ahead reaches (the reader went back, e.g. to the start, or past the
    /// end of the file: a lane that read 0 bytes there would otherwise hold its lane and its
    /// request slot as long as the handle is open).
    private func passOver(_ state: inout State, _ wanted: Key) {
        let reach = wanted.offset + Self.depth * UInt64(wanted.size)
        for index in 0..<state.lanes.count {
            let lane = state.lanes[index]
            guard lane.phase != .idle, !lane.stale, lane.claimant == 0, lane.key.fh == wanted.fh, lane.key.node == wanted.node,
                  lane.key.offset < wanted.offset || lane.key.offset > reach else { continue }
            markStale(&state.lanes[index])
        }
    }

    /// Whether `lane` holds (or fetches) the data `wanted` asks for: same node and handle,
    /// same offset, at least as many bytes asked, and nothing changed since.
    private static func holds(_ lane: Lane, _ wanted: Key) -> Bool {
        lane.phase != .idle && !lane.stale && lane.key.fh == wanted.fh && lane.key.node == wanted.node
            && lane.key.offset == wanted.offset && lane.key.size >= wanted.size
    }

    /// Hands ready lane `index`'s data to `slot` as its payload (the kept read is given back
    /// once the reply is written: `KeptReplies.replied`) and frees the lane. Returns the bytes
    /// served.
    private func take(_ state: inout State, _ index: Int, into slot: FuseSlot, size: Int) -> Int {
        let n = min(state.lanes[index].bytes, size)
        if let kept = state.lanes[index].kept { keptReplies.attach(kept, count: n, to: slot) }
        state.lanes[index].kept = nil
        state.lanes[index].phase = .idle
        state.lanes[index].claimant = 0
        return n
    }

    /// Frees a lane, giving back its kept read's request slot (under the lock: the lock order
    /// is this lock, then the connection's).
    private func free(_ lane: inout Lane) {
        lane.kept?.release()
        lane.kept = nil
        lane.phase = .idle
        lane.claimant = 0
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
            free(&lane)
            dropped.add(1, ordering: .relaxed)
        }
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

    /// Lanes whose data is in and not taken (for tests).
    var readyLanes: Int {
        state.withLock { state in
            var count = 0
            for index in 0..<state.lanes.count where state.lanes[index].phase == .ready { count += 1 }
            return count
        }
    }

    /// READs waiting on a lane's Tread right now.
    var waiting: Int {
        state.withLock { state in
            var count = 0
            for index in 0..<state.lanes.count where state.lanes[index].waiter != nil { count += 1 }
            return count
        }
    }

    /// For the status line.
    var summary: String {
        ", read-ahead: \(started.load(ordering: .relaxed)) started, \(served.load(ordering: .relaxed)) READs served from it (\(servedAfterWaiting.load(ordering: .relaxed)) after waiting), \(dropped.load(ordering: .relaxed)) dropped, \(waiting) READs waiting on it"
    }

    // MARK: Lanes' tasks

    private func runLane(_ index: Int) async {
        _ = await NinePFileSystem.growFrames(32)
        await CallCanceller.$current.withValue(cancellers[index]) {
            while await nextWork(index) {
                guard let (file, key) = pickUpWork(index) else { continue }
                // One Tread: a read-ahead is never started for more than the file's iounit.
                let kept = try? await file.readKept(count: key.size, at: key.offset)
                settle(index, kept)
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

    private func pickUpWork(_ index: Int) -> (RemoteFile, Key)? {
        state.withLock { state in
            guard state.lanes[index].workPending, let file = state.lanes[index].file else { return nil }
            state.lanes[index].workPending = false
            return (file, state.lanes[index].key)
        }
    }

    /// The lane's Tread settled: handed to the READ waiting, kept for the next, or freed
    /// (stale, failed or stopped with nobody waiting).
    private func settle(_ index: Int, _ kept: KeptRead?) {
        let waiter = state.withLock { state -> UnsafeContinuation<Wake, Never>? in
            state.lanes[index].file = nil
            state.lanes[index].kept = kept
            state.lanes[index].bytes = kept?.data.count ?? -1
            state.lanes[index].completedAt = ContinuousClock.now
            let waiter = state.lanes[index].waiter
            state.lanes[index].waiter = nil
            state.lanes[index].waiterCanceller = nil
            if waiter != nil {
                state.lanes[index].phase = .ready
            } else if state.lanes[index].stale || kept == nil || state.stopped {
                free(&state.lanes[index])
                dropped.add(1, ordering: .relaxed)
            } else {
                state.lanes[index].phase = .ready
            }
            return waiter
        }
        waiter?.resume(returning: .settled)
    }
}
