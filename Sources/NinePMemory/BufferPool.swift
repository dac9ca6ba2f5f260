import Glibc
import Synchronization

/// Fixed-size message buffers that are handed out and given back, never freed while the pool
/// lives. Buffers are created on first demand up to `capacity` and reused after that, so the
/// steady state allocates nothing; a caller that finds the pool empty waits (it never fails).
///
/// The memory-budget work replaces the lazy creation with buffers allocated, touched and
/// locked at start-up; callers do not change.
public final class BufferPool: @unchecked Sendable {
    // @unchecked Sendable: `free` and `created` are only touched with `condition` locked;
    // `bufferSize`/`capacity` are immutable.
    public let bufferSize: Int
    public let capacity: Int
    private let condition = ConditionLock()
    private var free: [UnsafeMutableRawBufferPointer]
    private var created = 0
    private var waiters = 0
    private var closed = false

    public init(bufferSize: Int, capacity: Int) {
        precondition(bufferSize > 0 && capacity > 0)
        self.bufferSize = bufferSize
        self.capacity = capacity
        free = []
        free.reserveCapacity(capacity)
    }

    deinit {
        for buffer in free { buffer.deallocate() }
    }

    /// A buffer, waiting for one to be released when all are in use. Returns nil only after
    /// `close()` (shutdown), so a waiting caller always wakes.
    public func acquire() -> UnsafeMutableRawBufferPointer? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if closed { return nil }
            if let buffer = free.popLast() { return buffer }
            if created < capacity {
                created += 1
                return .allocate(byteCount: bufferSize, alignment: 4096)
            }
            waiters += 1
            condition.wait()
            waiters -= 1
        }
    }

    /// A buffer if one is free right now.
    public func tryAcquire() -> UnsafeMutableRawBufferPointer? {
        condition.withLock {
            if let buffer = free.popLast() { return buffer }
            if created < capacity && !closed {
                created += 1
                return .allocate(byteCount: bufferSize, alignment: 4096)
            }
            return nil
        }
    }

    public func release(_ buffer: UnsafeMutableRawBufferPointer) {
        condition.withLock {
            free.append(buffer)
            if waiters > 0 { condition.signal() }
        }
    }

    /// Wakes every waiter with nil; used at shutdown.
    public func close() {
        condition.withLock {
            closed = true
            condition.broadcast()
        }
    }

    public var freeCount: Int { condition.withLock { free.count + (capacity - created) } }
}
