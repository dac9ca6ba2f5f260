import NinePWire

/// Everything a connection shares between callers, its reader thread and its housekeeper: the
/// slots, the tag table, the buffers, the fid numbers, the callers waiting for a slot and the
/// clunks still to send. Lives in one `Mutex` in `ClientConnection`; every method runs under it.
///
/// Slots 0..<requestSlots carry requests, the rest are the flush reserve: one per request slot,
/// so every request in flight can always be flushed, whatever the others hold.
struct ClientConnectionState: ~Copyable {
    var slots: [Slot]
    var tags = TagAllocator()
    var buffers: MessageBuffers
    var fids = FidAllocator()
    let requestSlots: Int
    let msize: UInt32
    let grace: Duration
    private var freeRequestSlots: [Int]
    private var freeFlushSlots: [Int]
    private var slotWaiters: [SlotWaiter] = []
    private var nextWaiterID: UInt64 = 0
    /// Waiters cancelled before they were queued (their cancellation handler ran first).
    private var cancelledBeforeQueued: [UInt64] = []
    var pendingClunks: [UInt32] = []
    /// Who reads the socket (see `CallerReads`).
    var baton = Baton.reader
    /// When the housekeeper will next look at deadlines (nil: only when poked).
    var housekeeperWakes: ContinuousClock.Instant? = nil
    private(set) var closed = false
    /// Replies whose tag was not in flight (a misbehaving server), counted for diagnostics.
    private(set) var strayReplies = 0

    init(requestSlots: Int, msize: UInt32, grace: Duration) {
        self.requestSlots = requestSlots
        self.msize = msize
        self.grace = grace
        slots = Array(repeating: Slot(), count: 2 * requestSlots)
        buffers = MessageBuffers(requestSlots: requestSlots, flushSlots: requestSlots, capacity: Int(msize))
        // Popped from the end: slot 0 first, and the most recently freed slot is reused first,
        // so a sequential caller keeps using one warm buffer.
        freeRequestSlots = Array((0..<requestSlots).reversed())
        freeFlushSlots = Array((requestSlots..<(2 * requestSlots)).reversed())
        slotWaiters.reserveCapacity(64)
        cancelledBeforeQueued.reserveCapacity(16)
        pendingClunks.reserveCapacity(64)
        // The first wait for a slot would instantiate, lazily, what these searches need
        // (a debug build's unspecialised generic code: 7 mallocs, seen in the mount daemon
        // when its first wait came long after warm-up): done now, at connect.
        _ = cancelledBeforeQueued.firstIndex(of: 0)
        _ = cancelledBeforeQueued.contains(0)
        _ = slotWaiters.firstIndex(where: { $0.id == 0 })
    }

    // MARK: Callers

    enum Acquired {
        case slot(Int)
        /// Every slot is in flight: wait as this waiter (`enqueueWaiter`).
        case full(waiter: UInt64)
        case closed
    }

    /// A free request slot with a fresh tag, held by the caller; or, when all are taken, the
    /// number the caller waits under. Numbering the waiter here, before it is queued, lets its
    /// cancellation name it with nothing shared but this number (no object per wait).
    mutating func acquire() -> Acquired {
        if closed { return .closed }
        guard let index = freeRequestSlots.popLast() else {
            nextWaiterID += 1
            return .full(waiter: nextWaiterID)
        }
        occupy(index)
        return .slot(index)
    }

    /// Request slots no caller holds and no reply is awaited on.
    var idleRequestSlots: Int { closed ? 0 : freeRequestSlots.count }

    private mutating func occupy(_ index: Int) {
        slots[index].reset()
        slots[index].inUse = true
        slots[index].callerHolds = true
        slots[index].tag = tags.allocate(for: index)
    }

    /// A caller waiting for a slot.
    struct SlotWaiter {
        let id: UInt64
        let continuation: UnsafeContinuation<Int, Never>
        let deadline: ContinuousClock.Instant?
    }

    /// Resumed instead of a slot index when the wait is cancelled or the connection closes.
    static let noSlot = -1
    /// Resumed instead of a slot index when the call's deadline passes while it waits.
    static let timedOut = -2

    /// Queues waiter `id` (from `acquire`) for the next free slot (resumed with its index, or
    /// `noSlot` / `timedOut`). Returns whether the housekeeper must look at its deadline.
    mutating func enqueueWaiter(_ id: UInt64, _ continuation: UnsafeContinuation<Int, Never>, deadline: ContinuousClock.Instant?) -> Bool {
        if closed {
            continuation.resume(returning: ClientConnectionState.noSlot)
            return false
        }
        if let position = cancelledBeforeQueued.firstIndex(of: id) {
            cancelledBeforeQueued.swapAt(position, cancelledBeforeQueued.count - 1)
            cancelledBeforeQueued.removeLast()
            continuation.resume(returning: ClientConnectionState.noSlot)
            return false
        }
        if let index = freeRequestSlots.popLast() {
            occupy(index)
            continuation.resume(returning: index)
            return false
        }
        slotWaiters.append(SlotWaiter(id: id, continuation: continuation, deadline: deadline))
        guard let deadline else { return false }
        if let wakes = housekeeperWakes, wakes <= deadline { return false }
        housekeeperWakes = deadline
        return true
    }

    /// Wakes waiter `id` without a slot. Not queued yet: remembered, so `enqueueWaiter` wakes
    /// it at once; already woken: `forgetCancelledWaiter` drops the note afterwards.
    mutating func cancelWaiter(_ id: UInt64) {
        if let position = slotWaiters.firstIndex(where: { $0.id == id }) {
            slotWaiters.remove(at: position).continuation.resume(returning: ClientConnectionState.noSlot)
        } else if !cancelledBeforeQueued.contains(id) {
            cancelledBeforeQueued.append(id)
        }
    }

    /// Called by a waiter that was cancelled, once it is awake: a note its cancellation left
    /// after the wait had ended goes (so the list stays as short as the waits in progress).
    mutating func forgetCancelledWaiter(_ id: UInt64) {
        guard let position = cancelledBeforeQueued.firstIndex(of: id) else { return }
        cancelledBeforeQueued.swapAt(position, cancelledBeforeQueued.count - 1)
        cancelledBeforeQueued.removeLast()
    }

    enum Start {
        /// Send the frame; `pokeHousekeeper` when the deadline is earlier than its next wake;
        /// `reading`: what the caller does about reading the socket (`takeReading`).
        case send(pokeHousekeeper: Bool, reading: ReadingRole)
        /// The caller was already resumed (cancelled before sending, or the connection is gone).
        case resumed
    }

    /// Registers the waiting caller just before its frame is sent.
    mutating func install(_ index: Int, _ continuation: UnsafeContinuation<Wake, Never>, deadline: ContinuousClock.Instant?, mayLead: Bool = false) -> Start {
        if closed {
            slots[index].callerGone = true
            continuation.resume(returning: .connectionLost)
            return .resumed
        }
        if slots[index].cancelRequested {
            slots[index].callerGone = true
            continuation.resume(returning: .abandoned(.cancelled))
            settle(index, reply: nil)
            return .resumed
        }
        slots[index].continuation = continuation
        slots[index].awaitingReply = true
        slots[index].deadline = deadline
        let reading = takeReading(mayLead: mayLead)
        return .send(pokeHousekeeper: watch(deadline), reading: reading)
    }

    /// A call now waits until `deadline`: true when the housekeeper must be poked to look at
    /// it (it would otherwise look later, or only when poked).
    private mutating func watch(_ deadline: ContinuousClock.Instant?) -> Bool {
        guard let deadline else { return false }
        if let wakes = housekeeperWakes, wakes <= deadline { return false }
        housekeeperWakes = deadline
        return true
    }

    // MARK: Following requests (ClientConnection+Following)

    /// Followers collected, and of those the ones the server ran before the call they followed
    /// (`ClientConnection.noteFollowerCollected`). A server that does that often (diod runs a
    /// connection's requests on a thread pool) gains nothing from them, each costs it an error
    /// and us a round trip more, and diod was seen to hang up on a client sending many: past
    /// `followerRanFirstLimit`, and more than one in ten, no more are sent.
    var followersCollected = 0
    var followersRanFirst = 0
    var followersOff = false
    static let followerRanFirstLimit = 4

    /// A following request is about to go on the wire behind its call's frame: a reply is
    /// awaited from now on (kept in the slot until collected). False when the connection is
    /// gone or the follower was cancelled: it is not sent. True with `wakeReader` set when
    /// nobody read the socket any more (the call's reply already in): the sender wakes it.
    mutating func launchFollowing(_ index: Int) -> Bool {
        guard !closed, !slots[index].cancelRequested else { return false }
        slots[index].awaitingReply = true
        if takeReading(mayLead: false) == .wakeReader { wakeReaderWanted = true }
        return true
    }

    enum FollowingWait {
        /// Settled already: resume with this (outside the lock).
        case ready(Wake)
        /// Installed; as `Start.send`, without a frame to send.
        case waiting(pokeHousekeeper: Bool, reading: ReadingRole)
    }

    mutating func noteFollowerCollected(ranFirst: Bool) {
        followersCollected += 1
        guard ranFirst else { return }
        followersRanFirst += 1
        if followersRanFirst >= Self.followerRanFirstLimit && followersRanFirst * 10 > followersCollected { followersOff = true }
    }

    /// The caller of a following request now waits for its reply: the reply that came in
    /// meanwhile, or the continuation installed as `install` does.
    mutating func awaitFollowing(_ index: Int, _ continuation: UnsafeContinuation<Wake, Never>, deadline: ContinuousClock.Instant?, mayLead: Bool) -> FollowingWait {
        if let length = slots[index].parkedReply {
            slots[index].parkedReply = nil
            return .ready(.reply(length: length))
        }
        guard slots[index].awaitingReply, !closed else {
            slots[index].callerGone = true
            return .ready(.connectionLost)
        }
        if slots[index].cancelRequested {
            slots[index].callerGone = true
            return .ready(.abandoned(.cancelled))
        }
        slots[index].continuation = continuation
        slots[index].deadline = deadline
        let reading = takeReading(mayLead: mayLead)
        return .waiting(pokeHousekeeper: watch(deadline), reading: reading)
    }

    /// The caller will not collect the following request: its slot is free once its reply (if
    /// one is still to come) is in, or its Rflush with `flush` (true: the housekeeper must be
    /// poked). Only requests with nothing to undo follow (Tgetattr).
    mutating func abandonFollowing(_ index: Int, flush: Bool) -> Bool {
        slots[index].callerGone = true
        slots[index].parkedReply = nil
        let poke = flush && requestFlush(index, reason: .cancelled, now: .now)
        finish(index)
        return poke
    }

    /// Whether a leading caller still has to read for the call in `slot` and the request
    /// following it (`following`, or -1): until the call is settled, and then, when it was
    /// answered (not flushed, abandoned or cancelled since), until the following reply is in.
    func leadSettled(_ slot: Int, following: Int) -> Bool {
        if closed { return true }
        if slots[slot].continuation != nil { return false }
        guard following >= 0, !slots[slot].callerGone, !slots[slot].cancelRequested else { return true }
        return !slots[following].awaitingReply || slots[following].cancelRequested
    }

    // MARK: Who reads

    /// The socket's reader: the reader thread (always, unless callers may read), nobody (the
    /// reader thread parked: no reply is awaited), or a caller waiting for its own reply.
    enum Baton { case reader, free, caller }

    enum ReadingRole {
        /// Someone reads already.
        case none
        /// The caller reads until its own reply is in (`ClientConnection.lead`).
        case lead
        /// The reader thread was parked: wake it.
        case wakeReader
    }

    /// Before a frame that expects a reply is sent: when nobody reads, the caller (if it may)
    /// or the reader thread takes the socket.
    mutating func takeReading(mayLead: Bool) -> ReadingRole {
        guard baton == .free else { return .none }
        baton = mayLead ? .caller : .reader
        return mayLead ? .lead : .wakeReader
    }

    /// Whether any request or flush still awaits its reply.
    var anyAwaiting: Bool {
        for index in 0..<slots.count where slots[index].awaitingReply { return true }
        return false
    }

    /// The holder of the socket lets go of it: to the reader thread while replies are still
    /// awaited (true: wake it), else to nobody.
    mutating func releaseReading(from holder: Baton) -> Bool {
        guard baton == holder else { return false }
        if anyAwaiting && !closed {
            baton = .reader
            return holder != .reader
        }
        baton = .free
        return false
    }

    /// The frame of `tag` is on the wire; true when a flush already waits for it.
    mutating func markSent(_ index: Int, tag: UInt16) -> Bool {
        guard slots[index].inUse, slots[index].tag == tag else { return false }
        slots[index].sent = true
        return slots[index].flushWanted && slots[index].awaitingReply
    }

    /// Task cancellation: flush the request (through the housekeeper), or, before it is sent,
    /// make sure it never is. True when the housekeeper must be poked.
    mutating func cancel(_ index: Int, tag: UInt16) -> Bool {
        guard slots[index].inUse, slots[index].tag == tag, slots[index].callerHolds, !slots[index].callerGone else { return false }
        if slots[index].continuation == nil && !slots[index].awaitingReply {
            slots[index].cancelRequested = true
            return false
        }
        return requestFlush(index, reason: .cancelled, now: .now)
    }

    mutating func requestFlush(_ index: Int, reason: AbandonReason, now: ContinuousClock.Instant) -> Bool {
        guard slots[index].awaitingReply, !slots[index].flushWanted else { return false }
        slots[index].flushWanted = true
        slots[index].flushReason = reason
        slots[index].graceDeadline = now + grace
        return true
    }

    /// The caller is done with the slot (it has read the reply, or stopped waiting).
    mutating func finish(_ index: Int) {
        slots[index].callerHolds = false
        slots[index].continuation = nil
        freeIfSettled(index)
    }

    // MARK: Reader thread

    /// Where the body of a reply with `tag` goes: its slot's buffer, or nil (discard: the tag
    /// is not in flight, or the reply is larger than the slot's buffer).
    mutating func destination(for tag: UInt16, size: Int) -> UnsafeMutableRawBufferPointer? {
        guard let index = tags.slot(of: tag), slots[index].awaitingReply else {
            strayReplies += 1
            return nil
        }
        let buffer = buffers.buffer(for: index)
        guard size <= buffer.count else { return nil }
        return buffer
    }

    /// A whole reply of `length` bytes for `tag` is in its slot's buffer. Returns whether the
    /// housekeeper has work (a clunk to send), and the waiting caller, whom the reader resumes
    /// with `.reply(length:)` once it has let go of the lock.
    ///
    /// Why not resume here: resuming a task takes the Swift runtime's lock on that task's status,
    /// and a cancellation handler runs while holding that same lock, and `call`'s handler takes
    /// ours. A reply resumed under our lock while the same task was being cancelled (a FUSE
    /// INTERRUPT as its reply came in) deadlocked both threads, and with them the mount (seen
    /// under stress-ng --link through `ninep mount`).
    mutating func deliver(tag: UInt16, length: Int) -> (poke: Bool, waiting: UnsafeContinuation<Wake, Never>?) {
        guard let index = tags.slot(of: tag), slots[index].awaitingReply else { return (false, nil) }
        slots[index].awaitingReply = false
        if index >= requestSlots { return (deliverRflush(flushSlot: index), nil) }
        if let continuation = slots[index].continuation {
            // The caller still waits: the reply is the answer, even if a flush is on its way.
            // With the continuation taken, neither the housekeeper (grace) nor `cancel` resumes
            // it: only the reader does, after unlocking.
            slots[index].continuation = nil
            return (false, continuation)
        }
        // A following request whose caller has not begun to wait: the reply waits for it.
        if slots[index].callerHolds && !slots[index].callerGone { slots[index].parkedReply = length }
        let poke = slots[index].callerGone ? settle(index, reply: length) : false
        freeIfSettled(index)
        return (poke, nil)
    }

    private mutating func deliverRflush(flushSlot: Int) -> Bool {
        let target = slots[flushSlot].flushTarget
        releaseSlot(flushSlot)
        guard target >= 0 else { return false }
        slots[target].flushSlot = -1
        var poke = false
        if slots[target].awaitingReply {
            // Rflush without the reply: the request never happened, and no reply can follow.
            slots[target].awaitingReply = false
            if let continuation = slots[target].continuation {
                slots[target].continuation = nil
                slots[target].callerGone = true
                continuation.resume(returning: .flushed)
            }
            if slots[target].callerGone { poke = settle(target, reply: nil) }
        }
        freeIfSettled(target)
        return poke
    }

    /// The request of a caller who stopped waiting has settled (`reply` bytes in its buffer,
    /// or nil when it never happened): undo what would leak. True when a clunk was queued.
    @discardableResult
    mutating func settle(_ index: Int, reply: Int?) -> Bool {
        let undo = slots[index].undo
        slots[index].undo = .none
        switch undo {
        case .none:
            return false
        case let .releaseFid(fid):
            // A Tclunk: answered, the fid is gone; flushed unanswered, it still exists.
            if reply != nil {
                fids.release(fid)
                return false
            }
            pendingClunks.append(fid)
            return true
        case let .clunk(fid):
            pendingClunks.append(fid)
            return true
        case let .walk(newfid, names):
            if let reply, walkSucceeded(index, length: reply, names: names) {
                pendingClunks.append(newfid)
                return true
            }
            fids.release(newfid)
            return false
        }
    }

    private mutating func walkSucceeded(_ index: Int, length: Int, names: Int) -> Bool {
        let frame = UnsafeRawBufferPointer(rebasing: buffers.buffer(for: index)[0..<length])
        guard let message = try? RMessage.decode(frame, msize: msize), case let .walk(qids) = message.response else { return false }
        return qids.count == names
    }

    private mutating func freeIfSettled(_ index: Int) {
        let slot = slots[index]
        guard slot.inUse, !slot.callerHolds, !slot.awaitingReply, slot.flushSlot < 0 else { return }
        releaseSlot(index)
    }

    private mutating func releaseSlot(_ index: Int) {
        tags.free(slots[index].tag)
        slots[index].reset()
        if index >= requestSlots {
            freeFlushSlots.append(index)
        } else if !slotWaiters.isEmpty && !closed {
            // Hand the slot straight to the longest waiting caller.
            // Concrete `remove(at:)`: the generic `removeFirst` allocates in a debug build.
            let waiter = slotWaiters.remove(at: 0)
            occupy(index)
            waiter.continuation.resume(returning: index)
        } else {
            freeRequestSlots.append(index)
        }
    }

    /// The connection is gone: every waiting caller fails, nothing is recycled any more.
    mutating func close() {
        guard !closed else { return }
        closed = true
        for index in slots.indices {
            if let continuation = slots[index].continuation {
                slots[index].continuation = nil
                slots[index].callerGone = true
                continuation.resume(returning: .connectionLost)
            }
        }
        for waiter in slotWaiters { waiter.continuation.resume(returning: ClientConnectionState.noSlot) }
        slotWaiters.removeAll()
    }

    // MARK: Housekeeper

    /// What the housekeeper does now: frames to send (Tflush, Tclunk) appended to `frames`
    /// (the housekeeper's own array, reserved for every slot, so a background clunk allocates
    /// nothing), and when to look again.
    mutating func chores(now: ContinuousClock.Instant, frames: inout [SlotFrame]) -> ContinuousClock.Instant? {
        // No local function capturing `nextLook`: a debug build boxes such a capture (a malloc
        // per look); `Self.later` takes it inout instead.
        var nextLook: ContinuousClock.Instant? = nil
        for index in 0..<requestSlots where slots[index].inUse {
            if let deadline = slots[index].deadline, slots[index].awaitingReply, !slots[index].flushWanted {
                if deadline <= now {
                    _ = requestFlush(index, reason: .timedOut, now: now)
                } else {
                    Self.later(&nextLook, deadline)
                }
            }
            if slots[index].flushWanted, slots[index].sent, slots[index].awaitingReply, slots[index].flushSlot < 0,
               let flushSlot = freeFlushSlots.popLast() {
                frames.append(encodeFlush(of: index, in: flushSlot))
            }
            if let grace = slots[index].graceDeadline, let continuation = slots[index].continuation {
                if grace <= now {
                    slots[index].continuation = nil
                    slots[index].callerGone = true
                    continuation.resume(returning: .abandoned(slots[index].flushReason))
                } else {
                    Self.later(&nextLook, grace)
                }
            }
        }
        var position = 0
        while position < slotWaiters.count {
            if let deadline = slotWaiters[position].deadline {
                if deadline <= now {
                    slotWaiters.remove(at: position).continuation.resume(returning: ClientConnectionState.timedOut)
                    continue
                }
                Self.later(&nextLook, deadline)
            }
            position += 1
        }
        while !pendingClunks.isEmpty, let index = freeRequestSlots.popLast() {
            // Concrete `remove(at:)`: the generic `removeFirst` allocates in a debug build.
            let fid = pendingClunks.remove(at: 0)
            frames.append(encodeBackgroundClunk(of: fid, in: index))
        }
        if !pendingClunks.isEmpty { Self.later(&nextLook, now + .milliseconds(20)) }
        housekeeperWakes = nextLook
        if !frames.isEmpty, takeReading(mayLead: false) == .wakeReader { wakeReaderWanted = true }
        return nextLook
    }

    /// Set when a frame sent by the housekeeper or in the background found nobody reading: the
    /// sender wakes the reader thread (`ClientConnection.wakeReader`) and clears it.
    var wakeReaderWanted = false

    /// A Tclunk nobody waits for, in a free request slot now (nil when none is free or the
    /// connection is closed: the caller queues it for the housekeeper instead). The reader
    /// settles it when Rclunk comes, which gives the fid number back.
    mutating func backgroundClunk(of fid: UInt32) -> SlotFrame? {
        guard !closed, let index = freeRequestSlots.popLast() else { return nil }
        if takeReading(mayLead: false) == .wakeReader { wakeReaderWanted = true }
        return encodeBackgroundClunk(of: fid, in: index)
    }

    private mutating func encodeBackgroundClunk(of fid: UInt32, in index: Int) -> SlotFrame {
        occupy(index)
        // Nobody waits for this one: settling it gives the fid number back.
        slots[index].callerHolds = false
        slots[index].callerGone = true
        slots[index].awaitingReply = true
        slots[index].undo = .releaseFid(fid)
        var writer = WireWriter(buffers.buffer(for: index))
        let length = (try? Request.clunk(fid: fid).encode(tag: slots[index].tag, into: &writer)) ?? 0
        return SlotFrame(slot: index, tag: slots[index].tag, bytes: UnsafeRawBufferPointer(rebasing: writer.buffer[0..<length]))
    }

    private static func later(_ nextLook: inout ContinuousClock.Instant?, _ instant: ContinuousClock.Instant) {
        if let current = nextLook, current <= instant { return }
        nextLook = instant
    }

    private mutating func encodeFlush(of index: Int, in flushSlot: Int) -> SlotFrame {
        slots[flushSlot].reset()
        slots[flushSlot].inUse = true
        slots[flushSlot].awaitingReply = true
        slots[flushSlot].flushTarget = index
        let tag = tags.allocate(for: flushSlot)
        slots[flushSlot].tag = tag
        slots[index].flushSlot = flushSlot
        var writer = WireWriter(buffers.buffer(for: flushSlot))
        let length = (try? Request.flush(oldtag: slots[index].tag).encode(tag: tag, into: &writer)) ?? 0
        return SlotFrame(slot: flushSlot, tag: tag, bytes: UnsafeRawBufferPointer(rebasing: writer.buffer[0..<length]))
    }

    /// Tags in use right now (for tests and diagnostics).
    var tagsInUse: Int { tags.inUse }
}
