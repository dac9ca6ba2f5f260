import Glibc
import NinePMemory

/// One request's memory: the buffer a request is read into from /dev/fuse and the buffer its
/// reply is built in. Both are allocated, touched and (when permitted) locked once at start-up.
///
/// `@unchecked Sendable`: a slot is owned by exactly one thread at a time. The pool hands it to
/// the reader, which reads one request into it and then either serves it inline and keeps it,
/// or gives it to exactly one task; that task writes the reply and returns it to the pool. The
/// pool's lock orders each hand-off, so no two threads ever touch a slot's bytes at once.
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

/// The fixed set of slots. The reader takes one before each read and waits when all are in use
/// (the kernel keeps further requests queued meanwhile); a finished request gives its slot back.
public final class FuseSlotPool: @unchecked Sendable {
    // @unchecked Sendable: `free` and `count` are read and written only with `lock` held.
    private let lock = ConditionLock()
    private let slots: [FuseSlot]
    private let free: UnsafeMutablePointer<Int>
    private var count: Int
    private var closed = false

    public init(slots: Int, requestBytes: Int, replyBytes: Int) {
        precondition(slots > 0)
        self.slots = (0..<slots).map { FuseSlot(index: $0, requestBytes: requestBytes, replyBytes: replyBytes) }
        free = .allocate(capacity: slots)
        for i in 0..<slots { free[i] = i }
        count = slots
    }

    deinit { free.deallocate() }

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

    public func put(_ slot: FuseSlot) {
        lock.lock()
        free[count] = slot.index
        count += 1
        lock.signal()
        lock.unlock()
    }

    /// Wakes a waiting reader for good (the session is ending).
    public func close() {
        lock.lock()
        closed = true
        lock.signal()
        lock.unlock()
    }

    /// Slots currently free (for status lines and tests).
    public var freeCount: Int { lock.withLock { count } }
}
