import NinePMemory

/// The FIFO of admitted requests that worker threads take from. A ring of fixed capacity (all
/// contexts of all connections), so enqueueing never allocates.
final class WorkQueue: @unchecked Sendable {
    // @unchecked Sendable: `ring`, `head`, `count` and `stopped` are only touched with
    // `condition` locked.
    private let condition = ConditionLock()
    private var ring: [RequestContext?]
    private var head = 0
    private var count = 0
    private var stopped = false

    init(capacity: Int) {
        ring = Array(repeating: nil, count: max(capacity, 1))
    }

    func enqueue(_ context: RequestContext) {
        condition.withLock {
            precondition(count < ring.count, "work queue overflow: more contexts than its capacity")
            ring[(head + count) % ring.count] = context
            count += 1
            condition.signal()
        }
    }

    /// The next request, or nil once stopped and drained.
    func dequeue() -> RequestContext? {
        condition.lock()
        defer { condition.unlock() }
        while count == 0 {
            if stopped { return nil }
            condition.wait()
        }
        let context = ring[head]
        ring[head] = nil
        head = (head + 1) % ring.count
        count -= 1
        return context
    }

    /// Takes a request out before a worker starts it (Tflush of a queued request); false if
    /// a worker already took it.
    func remove(_ context: RequestContext) -> Bool {
        condition.withLock {
            for step in 0..<count {
                let index = (head + step) % ring.count
                if ring[index] === context {
                    // Close the gap, keeping FIFO order.
                    var position = step
                    while position + 1 < count {
                        ring[(head + position) % ring.count] = ring[(head + position + 1) % ring.count]
                        position += 1
                    }
                    ring[(head + count - 1) % ring.count] = nil
                    count -= 1
                    return true
                }
            }
            return false
        }
    }

    func stop() {
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }
}
