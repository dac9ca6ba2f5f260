import Glibc
import NinePMemory

/// One request's memory: the buffer a request is read into from /dev/fuse and the buffer its
/// reply is built in. Both are allocated, touched and (when permitted) locked once at start-up.
///
/// `@unchecked Sendable`: a slot belongs to one worker (`FuseWorker`) for the session's life:
/// its thread reads a request into it and its task, run by that same thread, serves it and
/// builds the reply; the worker's lock orders the hand-off between the two. The pool copies a
/// held request into a slot only when its worker asks (`finished`), so no two threads ever
/// touch a slot's bytes at once.
public final class FuseSlot: @unchecked Sendable {
    public let index: Int
    public let request: UnsafeMutableRawBufferPointer
    public let reply: UnsafeMutableRawBufferPointer
    /// How many bytes of `request` the last read filled.
    public internal(set) var length = 0
    /// Bytes the reply goes on with, written from where they are rather than copied into
    /// `reply`: a READ's data still in the 9P client's message buffer (NinePFileSystem's
    /// `ReadAhead`). `FuseSession.writeReply` of `length` bytes then writes the first
    /// `length - payload.count` of `reply` and these, in one writev(2), and clears it.
    public var payload: UnsafeRawBufferPointer? = nil

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

/// The fixed slots, one per worker thread, and a queue of requests held while every worker but
/// the last reader is busy.
///
/// Every worker thread reads /dev/fuse into its own slot and serves what it read itself, on the
/// same thread, unless it is the last thread still reading: then it keeps reading (INTERRUPTs
/// come first, and a request the daemon has read can no longer be interrupted by the kernel
/// alone: the daemon must answer it), and the request it read is copied into a held buffer and
/// queued: a small one (anything but a large WRITE or SETXATTR) into one of `heldCapacity`
/// buffers of 8 KiB, a large one into one of `largeCapacity` buffers as large as a slot's (a
/// small one too when the small ones are all taken). The next worker to finish serves the
/// oldest in its own slot, and an INTERRUPT of a queued one is answered EINTR at once. The last
/// reader waits only when no held buffer can take the request: at most `slots - 1` +
/// `largeCapacity` + 1 large requests are ever read and unanswered.
///
/// Invariant (kept under the lock): a request is held only while exactly one worker reads, and a
/// worker that finishes takes the oldest held request before it reads again; so no request is
/// held while another worker idles in read(2).
public final class FuseSlotPool: @unchecked Sendable {
    // @unchecked Sendable: `reading`, `closed` and the held queue (`heldLength`, `heldUnique`,
    // `heldOrder`, `heldHead`, `heldCount`, the two free stacks and their counts) are read and
    // written only with `lock` held; `slots` and the buffers' addresses never change, and each
    // slot's bytes belong to its worker thread alone.
    private let lock = ConditionLock()
    private let slots: [FuseSlot]
    /// Workers reading /dev/fuse (or about to), not serving a request.
    private var reading: Int
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
        reading = slots
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

    /// Worker `index`'s slot.
    public func slot(_ index: Int) -> FuseSlot { slots[index] }

    /// What a worker does with a request it has just read into its slot.
    public enum Claim: Equatable, Sendable {
        /// Serve it: another worker reads meanwhile.
        case serve
        /// It was the last reader: the request was copied into a held buffer and queued, and the
        /// worker reads on.
        case queued
        /// The session is over.
        case closed
    }

    /// Called by a worker that read a request (not FORGET, BATCH_FORGET, INTERRUPT or INIT) into
    /// `slot`: `.serve` when another worker still reads, else the request is queued. Waits only
    /// when no held buffer can take it (then no one reads until a worker finishes).
    public func claim(_ slot: FuseSlot, unique: UInt64) -> Claim {
        lock.lock()
        defer { lock.unlock() }
        while !closed {
            if reading > 1 {
                reading -= 1
                return .serve
            }
            if let index = takeHeldBuffer(for: slot.length) {
                heldBuffer(index).copyMemory(from: slot.request.baseAddress!, byteCount: slot.length)
                heldLength[index] = slot.length
                heldUnique[index] = unique
                heldOrder[(heldHead + heldCount) % (heldCapacity + largeCapacity)] = index
                heldCount += 1
                return .queued
            }
            // Woken by a worker that finished: a held buffer emptied, or one more reader.
            lock.wait()
        }
        return .closed
    }

    /// Called by a worker that has answered the request in `slot`: true when the oldest held
    /// request was copied into the slot, to serve next; false when the worker reads again.
    public func finished(_ slot: FuseSlot) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        // A last reader waiting for room has some now, or may serve its request itself.
        lock.signal()
        if heldCount > 0 && !closed {
            let index = heldOrder[heldHead]
            heldHead = (heldHead + 1) % (heldCapacity + largeCapacity)
            heldCount -= 1
            let length = heldLength[index]
            slot.request.baseAddress!.copyMemory(from: heldBuffer(index), byteCount: length)
            slot.length = length
            giveBackHeldBuffer(index)
            return true
        }
        reading += 1
        return false
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

    /// Wakes a waiting last reader for good (the session is ending).
    public func close() {
        lock.lock()
        closed = true
        lock.broadcast()
        lock.unlock()
    }

    public var isClosed: Bool { lock.withLock { closed } }

    /// Workers reading /dev/fuse rather than serving (for status lines and tests).
    public var readingCount: Int { lock.withLock { reading } }

    /// Requests queued for a slot right now.
    public var heldRequests: Int { lock.withLock { heldCount } }
}
