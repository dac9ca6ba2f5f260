import Glibc

/// The size class of one buffer a request needs.
public enum BufferClass: UInt8, Sendable {
    case none, small, large
}

/// What a request needs before it may start: a receive buffer and a reply buffer.
public struct MemoryNeed: Sendable, Equatable {
    public var receive: BufferClass
    public var reply: BufferClass
    public init(receive: BufferClass, reply: BufferClass) {
        self.receive = receive
        self.reply = reply
    }
    var small: Int { (receive == .small ? 1 : 0) + (reply == .small ? 1 : 0) }
    var large: Int { (receive == .large ? 1 : 0) + (reply == .large ? 1 : 0) }
}

/// The buffers granted for one `MemoryNeed`.
public struct MemoryGrant {
    public var receive: UnsafeMutableRawBufferPointer?
    public var reply: UnsafeMutableRawBufferPointer?
}

/// Every pool of the budget behind one lock, and the one FIFO in which requests wait for
/// them. A grant is all or nothing: a waiter holds nothing while it waits, so no wait can
/// deadlock on another's partial holdings. The oldest waiter is served first, across all
/// connections; a releaser hands buffers straight to it and wakes only it.
///
/// Parking reserve: a request that waits on the outside world (a FIFO read, a socket) keeps
/// one small buffer. Up to `parkingReserve` such buffers are not counted against the shared
/// pool, so requests parked forever can never starve the others.
public final class MemoryArena: @unchecked Sendable {
    // @unchecked Sendable: every mutable field (pools, queue links, counters, statistics) is
    // touched only with `lock` held; `plan` and the pool objects are immutable references.
    public let plan: MemoryPlan
    public let small: BufferPool
    public let large: BufferPool
    let lock = ConditionLock()
    private var head: MemoryWaiter?
    private var tail: MemoryWaiter?
    private var closed = false
    /// Parking buffers not in use: the shared pool may not hand these out.
    private var parkingUnused: Int
    public let statistics: WaitStatistics

    public init(plan: MemoryPlan, sites: [String]) throws(BufferPool.CreationError) {
        self.plan = plan
        small = try BufferPool(name: "small", bufferSize: MemoryPlan.smallBufferBytes, capacity: plan.smallBuffers)
        large = try BufferPool(name: "large", bufferSize: plan.largeBufferBytes, capacity: plan.largeBuffers)
        parkingUnused = plan.parkingReserve
        statistics = WaitStatistics(sites: sites)
    }

    /// True when every pool is locked in RAM.
    public var locked: Bool { small.locked && large.locked }
    /// errno of the first refused mlock (0 when every pool is locked).
    public var lockError: Int32 { small.lockError != 0 ? small.lockError : large.lockError }

    // MARK: Granting

    /// Takes everything `need` asks for, waiting in the FIFO if it is not all free now (or if
    /// others wait already). Returns nil if the wait was cancelled (connection closing) or
    /// the arena closed (shutdown). While waiting, `stillWanted` is asked every
    /// `recheckMilliseconds`: returning false (the peer hung up) cancels the wait. That
    /// timer never fails a request; it only notices a closed connection.
    public func acquire(
        _ need: MemoryNeed, waiter: MemoryWaiter, site: Int,
        recheckMilliseconds: Int = 250, stillWanted: () -> Bool = { true }
    ) -> MemoryGrant? {
        lock.lock()
        defer { lock.unlock() }
        if closed { return nil }
        if head == nil, fitsLocked(need) {
            statistics.recordGrantLocked(site: site, waitedNanoseconds: nil)
            return takeLocked(need)
        }
        waiter.need = need
        waiter.grant = nil
        waiter.cancelled = false
        enqueueLocked(waiter)
        let start = MemoryClock.nanoseconds()
        while waiter.grant == nil && !waiter.cancelled && !closed {
            lock.wait(on: waiter.condition, milliseconds: recheckMilliseconds)
            if waiter.grant == nil && !waiter.cancelled && !closed {
                lock.unlock()
                let wanted = stillWanted()
                lock.lock()
                if !wanted && waiter.grant == nil { waiter.cancelled = true }
            }
        }
        let waited = MemoryClock.nanoseconds() &- start
        if let grant = waiter.grant {
            waiter.grant = nil
            statistics.recordGrantLocked(site: site, waitedNanoseconds: waited)
            return grant
        }
        removeLocked(waiter)
        statistics.recordCancelLocked(site: site, waitedNanoseconds: waited)
        // This waiter may have blocked others behind it while at the head.
        serveWaitersLocked()
        return nil
    }

    /// Ends `waiter`'s wait, if it waits (connection closing).
    public func cancel(_ waiter: MemoryWaiter) {
        lock.withLock {
            if waiter.queued && waiter.grant == nil {
                waiter.cancelled = true
                waiter.condition.signal()
            }
        }
    }

    /// A small buffer now, or nil: for a request that trades a large buffer for a small one.
    public func tryAcquireSmall() -> UnsafeMutableRawBufferPointer? {
        lock.withLock {
            guard head == nil, fitsLocked(MemoryNeed(receive: .small, reply: .none)) else { return nil }
            return small.take()
        }
    }

    /// Gives a buffer back (either class) and serves the waiters it lets through.
    public func release(_ buffer: UnsafeMutableRawBufferPointer, returningParkingBuffer: Bool = false) {
        lock.withLock {
            if large.owns(buffer) { large.put(buffer) } else { small.put(buffer) }
            if returningParkingBuffer { parkingUnused += 1 }
            serveWaitersLocked()
        }
    }

    /// A request starts waiting on the outside world holding one small buffer: it moves that
    /// buffer into the parking reserve if the reserve has room. Returns true if it did (the
    /// buffer must then be released with `returningParkingBuffer: true`).
    public func moveToParkingReserve() -> Bool {
        lock.withLock {
            guard parkingUnused > 0 else { return false }
            parkingUnused -= 1
            serveWaitersLocked()
            return true
        }
    }

    /// Wakes every waiter with nil and refuses new waits (shutdown). Buffers still come back.
    public func close() {
        lock.withLock {
            closed = true
            var node = head
            while let waiter = node {
                waiter.condition.signal()
                node = waiter.next
            }
        }
    }

    // MARK: Inside the lock

    private func fitsLocked(_ need: MemoryNeed) -> Bool {
        small.freeCount - parkingUnused >= need.small && large.freeCount >= need.large
    }

    private func takeLocked(_ need: MemoryNeed) -> MemoryGrant {
        func take(_ kind: BufferClass) -> UnsafeMutableRawBufferPointer? {
            switch kind {
            case .none: nil
            case .small: small.take()
            case .large: large.take()
            }
        }
        return MemoryGrant(receive: take(need.receive), reply: take(need.reply))
    }

    /// Hands free buffers to the oldest waiters, in order, while the head's need fits.
    private func serveWaitersLocked() {
        while let waiter = head, fitsLocked(waiter.need) {
            waiter.grant = takeLocked(waiter.need)
            removeLocked(waiter)
            waiter.condition.signal()
        }
    }

    private func enqueueLocked(_ waiter: MemoryWaiter) {
        precondition(!waiter.queued, "a waiter waits for one grant at a time")
        waiter.queued = true
        waiter.next = nil
        waiter.previous = tail
        if let last = tail { last.next = waiter } else { head = waiter }
        tail = waiter
    }

    private func removeLocked(_ waiter: MemoryWaiter) {
        guard waiter.queued else { return }
        if let previous = waiter.previous { previous.next = waiter.next } else { head = waiter.next }
        if let next = waiter.next { next.previous = waiter.previous } else { tail = waiter.previous }
        waiter.next = nil
        waiter.previous = nil
        waiter.queued = false
    }

    // MARK: Observing

    /// Free buffers per pool, for the status dump and metrics.
    public func freeCounts() -> (small: Int, large: Int, parking: Int) {
        lock.withLock { (small.freeCount, large.freeCount, parkingUnused) }
    }

    /// Waiters in the FIFO now.
    public var waitingCount: Int { lock.withLock { waitingCountLocked } }

    var waitingCountLocked: Int {
        var count = 0
        var node = head
        while let waiter = node {
            count += 1
            node = waiter.next
        }
        return count
    }

    var parkingUnusedForReport: Int { parkingUnused }
}

/// One thread's place in the arena's FIFO: preallocated (one per connection reader), so
/// waiting allocates nothing.
public final class MemoryWaiter: @unchecked Sendable {
    // @unchecked Sendable: every field is touched only with the arena's lock held.
    let condition = ConditionVariable()
    var need = MemoryNeed(receive: .none, reply: .none)
    var grant: MemoryGrant?
    var cancelled = false
    var queued = false
    var next: MemoryWaiter?
    var previous: MemoryWaiter?

    public init() {}
}

/// Monotonic nanoseconds, without Foundation.
public enum MemoryClock {
    @inline(__always)
    public static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }
}
