import Glibc
import Synchronization

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
/// Shares: a connection's waiter is also its account (`activate`). Each connection may hold at
/// most `plan.largePerConnection` large and `plan.smallPerConnection` small buffers, so a
/// client that stops reading its replies reaches its cap and is then not read (TCP pushes back
/// on it alone). Its first large buffer and first two small ones (one request of any kind) are
/// its due: it gets them as soon as they are free. Beyond its due it borrows, and a borrower
/// must leave free what the other connections are due, those not connected yet included (up
/// to a bound that lets one connection reach its cap): connections that hold nothing are never
/// starved by those that hold much, as long as the pool has a buffer for each of them.
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
    /// Buffers active accounts are due and do not hold yet (see `Share`).
    private var owedLarge = 0
    private var owedSmall = 0
    /// Sessions active now; the others of `plan.maxConnections` may start at any moment and
    /// are due their first buffers as well.
    private var activeAccounts = 0
    private var idleConnections: Int { max(0, plan.maxConnections - activeAccounts) }
    /// Deferred waiters granted and not yet taken (`takeDeferredGrant`), first granted first.
    private var grantedHead: MemoryWaiter?
    private var grantedTail: MemoryWaiter?
    /// How many there are: read without the lock, so releasers check it cheaply.
    private let grantedCount = Atomic<Int>(0)

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
        if head == nil, fitsLocked(need, for: waiter) {
            statistics.recordGrantLocked(site: site, waitedNanoseconds: nil)
            return takeLocked(need, for: waiter)
        }
        waiter.need = need
        waiter.grant = nil
        waiter.cancelled = false
        enqueueLocked(waiter)
        // Others wait, but perhaps for their own share only: this need may fit now.
        serveWaitersLocked()
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

    // MARK: Deferred grants

    /// For a request whose connection's reader must go on reading (a Tread whose reply buffer
    /// is not free yet, while its Tflush may come behind it): the grant now if it fits and
    /// nobody waits before it; otherwise `waiter` (a deferred one, see `MemoryWaiter.init`)
    /// joins the FIFO and nil is returned. When it is served, it goes to the granted list,
    /// where `takeDeferredGrant` finds it; nothing blocks. Nil without queueing once closed.
    public func acquireDeferred(_ need: MemoryNeed, waiter: MemoryWaiter, site: Int) -> MemoryGrant? {
        precondition(waiter.deferred, "a blocking waiter cannot wait deferred")
        return lock.withLock {
            if closed || waiter.queued || waiter.inGrantedList { return nil }
            if head == nil, fitsLocked(need, for: waiter) {
                statistics.recordGrantLocked(site: site, waitedNanoseconds: nil)
                return takeLocked(need, for: waiter)
            }
            waiter.need = need
            waiter.grant = nil
            waiter.site = site
            waiter.waitStart = MemoryClock.nanoseconds()
            enqueueLocked(waiter)
            serveWaitersLocked()
            return nil
        }
    }

    /// Whether deferred grants wait to be taken (no lock: a hint for releasers).
    public var hasDeferredGrants: Bool { grantedCount.load(ordering: .acquiring) > 0 }

    /// The oldest deferred grant not taken yet, with its waiter.
    public func takeDeferredGrant() -> (waiter: MemoryWaiter, grant: MemoryGrant)? {
        lock.withLock {
            guard let waiter = grantedHead else { return nil }
            grantedHead = waiter.nextGranted
            if grantedHead == nil { grantedTail = nil }
            waiter.nextGranted = nil
            waiter.inGrantedList = false
            grantedCount.subtract(1, ordering: .releasing)
            let grant = waiter.grant ?? MemoryGrant()
            waiter.grant = nil
            return (waiter, grant)
        }
    }

    /// Takes a deferred waiter out, waiting or granted (its requests were flushed, or its
    /// connection closes). A grant it had already received is returned: give it back.
    public func withdraw(_ waiter: MemoryWaiter) -> MemoryGrant? {
        lock.withLock {
            if waiter.queued {
                removeLocked(waiter)
                serveWaitersLocked()
                return nil
            }
            guard waiter.inGrantedList else { return nil }
            var previous: MemoryWaiter? = nil
            var node = grantedHead
            while let current = node, current !== waiter {
                previous = current
                node = current.nextGranted
            }
            if let previous { previous.nextGranted = waiter.nextGranted } else { grantedHead = waiter.nextGranted }
            if grantedTail === waiter { grantedTail = previous }
            waiter.nextGranted = nil
            waiter.inGrantedList = false
            grantedCount.subtract(1, ordering: .releasing)
            let grant = waiter.grant
            waiter.grant = nil
            return grant
        }
    }

    /// Everything `need` asks for now, or nil without waiting (nor overtaking anyone waiting).
    public func tryAcquire(_ need: MemoryNeed, for account: MemoryWaiter? = nil, site: Int) -> MemoryGrant? {
        lock.withLock {
            guard !closed, head == nil, fitsLocked(need, for: account) else { return nil }
            statistics.recordGrantLocked(site: site, waitedNanoseconds: nil)
            return takeLocked(need, for: account)
        }
    }

    /// A small buffer now, or nil: for a request that trades a large buffer for a small one.
    public func tryAcquireSmall(for account: MemoryWaiter? = nil) -> UnsafeMutableRawBufferPointer? {
        lock.withLock {
            let need = MemoryNeed(receive: .small, reply: .none)
            guard head == nil, fitsLocked(need, for: account) else { return nil }
            return takeLocked(need, for: account).receive
        }
    }

    /// Gives a buffer back (either class) and serves the waiters it lets through. `account`:
    /// the connection that held it, if it was granted to one.
    public func release(_ buffer: UnsafeMutableRawBufferPointer, returningParkingBuffer: Bool = false, from account: MemoryWaiter? = nil) {
        lock.withLock {
            let isLarge = large.owns(buffer)
            if isLarge { large.put(buffer) } else { small.put(buffer) }
            // Counted even between sessions: a buffer of the last session may come back after
            // its account was deactivated (owed is only counted while active).
            if let account { changeHoldingsLocked(account.account, large: isLarge ? -1 : 0, small: isLarge ? 0 : -1) }
            if returningParkingBuffer { parkingUnused += 1 }
            serveWaitersLocked()
        }
    }

    /// A connection's session starts: its holdings count against its share from now on, and
    /// its due is kept for it.
    public func activate(_ account: MemoryWaiter) {
        lock.withLock {
            precondition(!account.accounted, "an account is activated once per session")
            account.accounted = true
            activeAccounts += 1
            owedLarge += account.owedLarge
            owedSmall += account.owedSmall
        }
    }

    /// The session ended (every buffer given back): nothing is kept for it any more.
    public func deactivate(_ account: MemoryWaiter) {
        lock.withLock {
            guard account.accounted else { return }
            owedLarge -= account.owedLarge
            owedSmall -= account.owedSmall
            account.accounted = false
            activeAccounts -= 1
            serveWaitersLocked()
        }
    }

    /// Buffers `account` holds now (large, small).
    public func holdings(of account: MemoryWaiter) -> (large: Int, small: Int) {
        lock.withLock { (account.heldLarge, account.heldSmall) }
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

    private func fitsLocked(_ need: MemoryNeed, for waiter: MemoryWaiter?) -> Bool {
        let freeSmall = small.freeCount - parkingUnused
        guard freeSmall >= need.small && large.freeCount >= need.large else { return false }
        guard let account = waiter?.account, account.accounted else {
            // Unaccounted (tests, benchmarks): leaves the active accounts' due alone.
            return (need.large == 0 || large.freeCount - need.large >= owedLarge)
                && (need.small == 0 || freeSmall - need.small >= owedSmall)
        }
        let idleLarge = Self.honouredIdle(idleConnections, pool: plan.largeBuffers, cap: plan.largePerConnection, active: activeAccounts, due: MemoryWaiter.dueLarge)
        let idleSmall = Self.honouredIdle(idleConnections, pool: plan.sharedSmallBuffers, cap: plan.smallPerConnection, active: activeAccounts, due: MemoryWaiter.dueSmall)
        return Self.fits(
            need.large, held: account.heldLarge, due: MemoryWaiter.dueLarge, cap: plan.largePerConnection,
            free: large.freeCount, owedByOthers: owedLarge - account.owedLarge + idleLarge * MemoryWaiter.dueLarge,
            reserveLimit: plan.largeBuffers - plan.largePerConnection)
            && Self.fits(
                need.small, held: account.heldSmall, due: MemoryWaiter.dueSmall, cap: plan.smallPerConnection,
                free: freeSmall, owedByOthers: owedSmall - account.owedSmall + idleSmall * MemoryWaiter.dueSmall,
                reserveLimit: plan.sharedSmallBuffers - plan.smallPerConnection)
    }

    /// How many connections not yet open have their due kept for them: as many as the pool
    /// holds after every open connection's due and one connection's full share. A pool with a
    /// buffer for every possible connection keeps all of them (a late client finds its due
    /// even when the first ones stopped reading with their shares full); a smaller one lends
    /// the rest to the open connections instead of keeping buffers for clients that may never
    /// come (16 busy connections on 20 buffers ran one request each).
    static func honouredIdle(_ idle: Int, pool: Int, cap: Int, active: Int, due: Int) -> Int {
        max(0, min(idle, (pool - cap) / due - active))
    }

    /// One class: within its due a connection takes what is free; beyond it, it stays within
    /// its cap and leaves free what the others are due (at most `reserveLimit`, so that one
    /// connection can always reach its cap when the others hold nothing).
    static func fits(_ count: Int, held: Int, due: Int, cap: Int, free: Int, owedByOthers: Int, reserveLimit: Int) -> Bool {
        if count == 0 { return true }
        if held + count <= due { return free >= count }
        return held + count <= cap && free - count >= min(owedByOthers, max(0, reserveLimit))
    }

    /// Adds `large` and `small` to what `account` holds, keeping the arena's owed totals.
    private func changeHoldingsLocked(_ account: MemoryWaiter, large: Int, small: Int) {
        owedLarge -= account.owedLarge
        owedSmall -= account.owedSmall
        account.heldLarge += large
        account.heldSmall += small
        owedLarge += account.owedLarge
        owedSmall += account.owedSmall
    }

    private func takeLocked(_ need: MemoryNeed, for waiter: MemoryWaiter?) -> MemoryGrant {
        if let account = waiter?.account { changeHoldingsLocked(account, large: need.large, small: need.small) }
        func take(_ kind: BufferClass) -> UnsafeMutableRawBufferPointer? {
            switch kind {
            case .none: nil
            case .small: small.take()
            case .large: large.take()
            }
        }
        return MemoryGrant(receive: take(need.receive), reply: take(need.reply))
    }

    /// Hands free buffers to the waiters, oldest first. A waiter whose need does not fit (its
    /// own cap, or what others are due) does not hold up the ones behind it: each connection
    /// has one waiter, and what it waits for is its own share.
    private func serveWaitersLocked() {
        var node = head
        while let waiter = node {
            node = waiter.next
            if fitsLocked(waiter.need, for: waiter) {
                waiter.grant = takeLocked(waiter.need, for: waiter)
                removeLocked(waiter)
                if waiter.deferred {
                    statistics.recordGrantLocked(site: waiter.site, waitedNanoseconds: MemoryClock.nanoseconds() &- waiter.waitStart)
                    waiter.inGrantedList = true
                    if let last = grantedTail { last.nextGranted = waiter } else { grantedHead = waiter }
                    grantedTail = waiter
                    grantedCount.add(1, ordering: .releasing)
                } else {
                    waiter.condition.signal()
                }
            }
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

/// One connection's place in the arena's FIFO and its account: what it holds against its
/// share. Preallocated (one per connection reader), so waiting allocates nothing. A waiter
/// never activated (tests, benchmarks) has no share: no cap and no due.
public final class MemoryWaiter: @unchecked Sendable {
    // @unchecked Sendable: every field is touched only with the arena's lock held.
    let condition = ConditionVariable()
    var accounted = false
    var heldLarge = 0
    var heldSmall = 0
    /// What every connection is due: one request of any kind (a large and a small buffer,
    /// or two small ones).
    static let dueLarge = 1
    static let dueSmall = 2
    var owedLarge: Int { accounted ? max(0, Self.dueLarge - heldLarge) : 0 }
    var owedSmall: Int { accounted ? max(0, Self.dueSmall - heldSmall) : 0 }
    /// A deferred waiter has no thread waiting: served, it joins the arena's granted list.
    public let deferred: Bool
    /// Whose share its grants count against: its own, or (a deferred waiter) its connection's.
    unowned(unsafe) let accountOwner: MemoryWaiter?
    var account: MemoryWaiter { accountOwner ?? self }
    /// The object that takes a deferred grant (its connection), for whoever takes it.
    public unowned(unsafe) var owner: AnyObject?
    var inGrantedList = false
    var nextGranted: MemoryWaiter?
    var site = 0
    var waitStart: UInt64 = 0
    var need = MemoryNeed(receive: .none, reply: .none)
    var grant: MemoryGrant?
    var cancelled = false
    var queued = false
    var next: MemoryWaiter?
    var previous: MemoryWaiter?

    public init() {
        deferred = false
        accountOwner = nil
    }

    /// A deferred waiter whose grants count against `account`'s share, taken by `owner`.
    public init(deferredFor account: MemoryWaiter, owner: AnyObject) {
        deferred = true
        accountOwner = account
        self.owner = owner
    }
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
