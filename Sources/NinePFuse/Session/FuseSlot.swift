import Glibc
import NinePMemory

/// One request's memory: the buffer a request is read into from /dev/fuse and the buffer its
/// reply is built in. Both are allocated, touched and (when permitted) locked once at start-up.
///
/// `@unchecked Sendable`: a slot is owned by exactly one thread at a time. The pool hands it to
/// the reader, which reads one request into it and then either serves it inline and keeps it,
/// or gives it to exactly one task; that task writes the reply and returns it to the pool. The
/// pool's lock orders each hand-off, so no two threads ever touch a slot's bytes at once. The
/// session's spare slot (index -1) never enters the pool: only the reader thread touches it.
public final class FuseSlot: @unchecked Sendable {
    public let index: Int
    public let request: UnsafeMutableRawBufferPointer
    public let reply: UnsafeMutableRawBufferPointer
    /// How many bytes of `request` the last read filled.
    public internal(set) var length = 0

    init(index: Int, requestBytes: Int, replyBytes: Int) {
        self.index = index
        request = .allocate(byteCount: requestBytes, alignment: 4096)
        reply = .allocate(byteCount: replyBytes, alignment: 4096)
        // Touch every page now, so the first large READ or WRITE does not fault memory in.
        request.initializeMemory(as: UInt8.self, repeating: 0)
        reply.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        request.deallocate()
        reply.deallocate()
    }

    /// The request as read.
    public var requestBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: request[0..<length]) }
}

/// The fixed set of slots, and a queue of requests held while every slot is busy.
///
/// A request the reader has read can no longer be interrupted by the kernel alone: the daemon
/// must answer it. So the reader must keep reading (INTERRUPTs come first) even when every slot
/// holds a request that waits on a server that stopped answering. It then reads into a spare
/// buffer of its own, and the request read there is copied into a held buffer and queued: a
/// small one (anything but a large WRITE or SETXATTR) into one of `heldCapacity` buffers of
/// 8 KiB, a large one into one of `largeCapacity` buffers as large as a slot's (a small one too
/// when the small ones are all taken). The next slot given back serves the oldest, and an
/// INTERRUPT of a queued one is answered EINTR at once. The reader waits for a slot only when
/// every slot and every held buffer that could take the request are busy: at most `slots` +
/// `largeCapacity` + 1 large requests (the last in the spare) are ever read and unanswered.
public final class FuseSlotPool: @unchecked Sendable {
    // @unchecked Sendable: `free`, `count`, `closed` and the held queue (`heldLength`,
    // `heldUnique`, `heldOrder`, `heldHead`, `heldCount`, the two free stacks and their counts)
    // are read and written only with `lock` held; `slots` and the buffers' addresses never change.
    private let lock = ConditionLock()
    private let slots: [FuseSlot]
    private let free: UnsafeMutablePointer<Int>
    private var count: Int
    private var closed = false

    /// Bytes of one small held request at most: every request but a WRITE's or SETXATTR's data fits.
    public static let heldRequestBytes = 8192
    public let heldCapacity: Int
    public let largeCapacity: Int
    private let largeBytes: Int
    /// Held buffers 0..<heldCapacity are small, heldCapacity..<heldCapacity+largeCapacity large.
    private let smallBuffers: UnsafeMutableRawBufferPointer
    private let largeBuffers: UnsafeMutableRawBufferPointer
    private let heldLength: UnsafeMutablePointer<Int>
    private let heldUnique: UnsafeMutablePointer<UInt64>
    /// FIFO of held buffer indices (a ring over both kinds), and a stack of unused ones per kind.
    private let heldOrder: UnsafeMutablePointer<Int>
    private var heldHead = 0
    private var heldCount = 0
    private let smallFree: UnsafeMutablePointer<Int>
    private var smallFreeCount: Int
    private let largeFree: UnsafeMutablePointer<Int>
    private var largeFreeCount: Int

    public init(slots: Int, requestBytes: Int, replyBytes: Int, held: Int = 64, large: Int = 4) {
        precondition(slots > 0 && held >= 0 && large >= 0)
        self.slots = (0..<slots).map { FuseSlot(index: $0, requestBytes: requestBytes, replyBytes: replyBytes) }
        free = .allocate(capacity: slots)
        for i in 0..<slots { free[i] = i }
        count = slots
        heldCapacity = held
        largeCapacity = large
        largeBytes = requestBytes
        let total = max(1, held + large)
        smallBuffers = .allocate(byteCount: max(1, held) * Self.heldRequestBytes, alignment: 16)
        smallBuffers.initializeMemory(as: UInt8.self, repeating: 0)
        largeBuffers = .allocate(byteCount: max(1, large) * requestBytes, alignment: 4096)
        largeBuffers.initializeMemory(as: UInt8.self, repeating: 0)
        heldLength = .allocate(capacity: total)
        heldUnique = .allocate(capacity: total)
        heldOrder = .allocate(capacity: total)
        smallFree = .allocate(capacity: max(1, held))
        for i in 0..<held { smallFree[i] = i }
        smallFreeCount = held
        largeFree = .allocate(capacity: max(1, large))
        for i in 0..<large { largeFree[i] = held + i }
        largeFreeCount = large
    }

    deinit {
        free.deallocate()
        smallBuffers.deallocate()
        largeBuffers.deallocate()
        heldLength.deallocate()
        heldUnique.deallocate()
        heldOrder.deallocate()
        smallFree.deallocate()
        largeFree.deallocate()
    }

    private func heldBuffer(_ index: Int) -> UnsafeMutableRawPointer {
        index < heldCapacity
            ? smallBuffers.baseAddress! + index * Self.heldRequestBytes
            : largeBuffers.baseAddress! + (index - heldCapacity) * largeBytes
    }

    /// A free held buffer for a request of `bytes`, or nil. Called with `lock` held.
    private func takeHeldBuffer(for bytes: Int) -> Int? {
        if bytes <= Self.heldRequestBytes && smallFreeCount > 0 {
            smallFreeCount -= 1
            return smallFree[smallFreeCount]
        }
        if bytes <= largeBytes && largeFreeCount > 0 {
            largeFreeCount -= 1
            return largeFree[largeFreeCount]
        }
        return nil
    }

    /// Called with `lock` held.
    private func giveBackHeldBuffer(_ index: Int) {
        if index < heldCapacity {
            smallFree[smallFreeCount] = index
            smallFreeCount += 1
        } else {
            largeFree[largeFreeCount] = index
            largeFreeCount += 1
        }
    }

    public var capacity: Int { slots.count }
    public var requestBytes: Int { slots[0].request.count }
    public var replyBytes: Int { slots[0].reply.count }

    /// A free slot; waits while none is. nil once the pool is closed.
    public func take() -> FuseSlot? {
        lock.lock()
        defer { lock.unlock() }
        while count == 0 && !closed { lock.wait() }
        if closed { return nil }
        count -= 1
        return slots[free[count]]
    }

    /// A free slot, or nil at once when none is (or the pool is closed).
    public func tryTake() -> FuseSlot? {
        lock.lock()
        defer { lock.unlock() }
        if closed || count == 0 { return nil }
        count -= 1
        return slots[free[count]]
    }

    /// Admits the request in `bytes` (read into the reader's spare buffer): a slot with the
    /// request copied into it, to serve now; or nil when it was queued (every slot busy) or the
    /// pool is closed. Waits for a slot only when no held buffer can take the request.
    public func admit(_ bytes: UnsafeRawBufferPointer, unique: UInt64) -> FuseSlot? {
        lock.lock()
        defer { lock.unlock() }
        // Invariant: requests are queued only while no slot is free (`release` serves the queue
        // before freeing a slot), so a request queued here keeps its place behind the others.
        while !closed {
            if count > 0 {
                count -= 1
                let slot = slots[free[count]]
                slot.request.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                slot.length = bytes.count
                return slot
            }
            if let index = takeHeldBuffer(for: bytes.count) {
                heldBuffer(index).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                heldLength[index] = bytes.count
                heldUnique[index] = unique
                heldOrder[(heldHead + heldCount) % (heldCapacity + largeCapacity)] = index
                heldCount += 1
                return nil
            }
            // Woken by a slot given back, or a held buffer emptied onto one.
            lock.wait()
        }
        return nil
    }

    /// Gives `slot` back. When requests are queued, the oldest is copied into it instead and the
    /// slot is returned, to serve that request.
    public func release(_ slot: FuseSlot) -> FuseSlot? {
        precondition(slot.index >= 0, "the reader's spare buffer is not a pool slot")
        lock.lock()
        defer { lock.unlock() }
        if heldCount > 0 && !closed {
            let index = heldOrder[heldHead]
            heldHead = (heldHead + 1) % (heldCapacity + largeCapacity)
            heldCount -= 1
            let length = heldLength[index]
            slot.request.baseAddress!.copyMemory(from: heldBuffer(index), byteCount: length)
            slot.length = length
            giveBackHeldBuffer(index)
            // A reader waiting for room has some now.
            lock.signal()
            return slot
        }
        free[count] = slot.index
        count += 1
        lock.signal()
        return nil
    }

    /// INTERRUPT of a request still queued: it is taken out (to be answered EINTR). False when
    /// no queued request has this `unique`.
    public func cancelHeld(_ unique: UInt64) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let ring = heldCapacity + largeCapacity
        var position = 0
        while position < heldCount {
            let index = heldOrder[(heldHead + position) % ring]
            if heldUnique[index] == unique {
                // Close the gap, keeping the order of the others.
                var p = position
                while p + 1 < heldCount {
                    heldOrder[(heldHead + p) % ring] = heldOrder[(heldHead + p + 1) % ring]
                    p += 1
                }
                heldCount -= 1
                giveBackHeldBuffer(index)
                return true
            }
            position += 1
        }
        return false
    }

    /// Wakes a waiting reader for good (the session is ending).
    public func close() {
        lock.lock()
        closed = true
        lock.broadcast()
        lock.unlock()
    }

    public var isClosed: Bool { lock.withLock { closed } }

    /// Slots currently free (for status lines and tests).
    public var freeCount: Int { lock.withLock { count } }

    /// Requests queued for a slot right now.
    public var heldRequests: Int { lock.withLock { heldCount } }
}
