import NinePMemory

/// The admitted requests that worker threads take from, shared fairly between connections:
/// each connection has its own first-in-first-out queue (`ServerConnection.WorkLine`), and workers
/// take one request from each connection with work in turn (round robin). A connection with
/// 64 requests queued delays another connection's single request by at most one request per
/// worker, not by all 64. Rings of fixed capacity (every context, every connection), so
/// queueing never allocates.
final class WorkQueue<Backend: FileSystemBackend>: @unchecked Sendable {
    // @unchecked Sendable: `ready`, `head`, `count`, `stopped` and every connection's
    // `workLine` are only touched with `condition` locked.
    private let condition = ConditionLock()
    /// Connections with requests queued, in the order they are served.
    private var ready: UnsafeMutableBufferPointer<ServerConnection<Backend>?>
    private var head = 0
    private var count = 0
    private var stopped = false

    /// `connections`: the most connections that can be open at once. Twice that many places:
    /// a connection whose queued requests were all taken out (`remove`) keeps its place
    /// until a worker passes it, and may have closed and been followed by a new one.
    init(connections: Int) {
        ready = .allocate(capacity: 2 * max(connections, 1) + 2)
        ready.initialize(repeating: nil)
    }

    deinit {
        _ = ready.deinitialize()
        ready.deallocate()
    }

    func enqueue(_ context: RequestContext<Backend>) {
        condition.withLock {
            let connection = context.connection
            connection.workLine.append(context)
            if !connection.workLine.inReadyRing {
                precondition(count < ready.count, "work queue overflow: more connections than its capacity")
                connection.workLine.inReadyRing = true
                ready[(head + count) % ready.count] = connection
                count += 1
            }
            condition.signal()
        }
    }

    /// The next request (from the next connection in turn), or nil once stopped and drained.
    func dequeue() -> RequestContext<Backend>? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            while count == 0 {
                if stopped { return nil }
                condition.wait()
            }
            let connection = ready[head]!
            ready[head] = nil
            head = (head + 1) % ready.count
            count -= 1
            guard let context = connection.workLine.removeFirst() else {
                connection.workLine.inReadyRing = false  // emptied by `remove`
                continue
            }
            if connection.workLine.isEmpty {
                connection.workLine.inReadyRing = false
            } else {
                ready[(head + count) % ready.count] = connection  // its next request waits its turn
                count += 1
            }
            return context
        }
    }

    /// Takes a request out before a worker starts it (Tflush of a queued request); false if
    /// a worker already took it.
    func remove(_ context: RequestContext<Backend>) -> Bool {
        condition.withLock { context.connection.workLine.remove(context) }
    }

    func stop() {
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }
}

/// One connection's queued requests, oldest first: a ring with a place for each of its
/// contexts. Guarded by the `WorkQueue`'s lock.
struct WorkLine<Backend: FileSystemBackend> {
    private let ring: UnsafeMutableBufferPointer<RequestContext<Backend>?>
    private var head = 0
    private var count = 0
    /// Whether the connection has a place in the work queue's round.
    var inReadyRing = false

    init(capacity: Int) {
        ring = .allocate(capacity: max(capacity, 1))
        ring.initialize(repeating: nil)
    }

    /// Called once, when the connection goes away.
    func deallocate() {
        _ = ring.deinitialize()
        ring.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    mutating func append(_ context: RequestContext<Backend>) {
        precondition(count < ring.count, "work line overflow: a context queued twice")
        ring[(head + count) % ring.count] = context
        count += 1
    }

    mutating func removeFirst() -> RequestContext<Backend>? {
        guard count > 0 else { return nil }
        let context = ring[head]
        ring[head] = nil
        head = (head + 1) % ring.count
        count -= 1
        return context
    }

    mutating func remove(_ context: RequestContext<Backend>) -> Bool {
        for step in 0..<count where ring[(head + step) % ring.count] === context {
            // Close the gap, keeping the order.
            var position = step
            while position + 1 < count {
                ring[(head + position) % ring.count] = ring[(head + position + 1) % ring.count]
                position += 1
            }
            ring[(head + count - 1) % ring.count] = nil
            count -= 1
            return true
        }
        return false
    }
}
