import CNinePShims
import Glibc

/// A pthread mutex with one condition variable, for threads that must sleep until a state
/// changes (a free buffer, a queued request). Swift's `Mutex` has no condition variable.
///
/// `@unchecked Sendable`: the mutex and condition live in heap memory that never moves and is
/// only touched through pthread calls, which are thread-safe by definition.
public final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        // Adaptive: spins briefly before sleeping; the sections it guards are short.
        ninep_mutex_init_adaptive(mutex)
        condition = .allocate(capacity: 1)
        ConditionLock.initializeMonotonic(condition)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    @inlinable
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Sleeps until signalled; the lock must be held and is held again on return.
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Sleeps until signalled or until `milliseconds` pass; the lock must be held.
    public func wait(milliseconds: Int) {
        var deadline = ConditionLock.deadline(afterMilliseconds: milliseconds)
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// Sleeps on another condition variable with this lock (held, and held again on return),
    /// until signalled or until `milliseconds` pass: one variable per waiter lets a releaser
    /// wake exactly the waiter it served.
    public func wait(on variable: ConditionVariable, milliseconds: Int) {
        var deadline = ConditionLock.deadline(afterMilliseconds: milliseconds)
        pthread_cond_timedwait(variable.condition, mutex, &deadline)
    }

    /// Timed waits measure on CLOCK_MONOTONIC, not the wall clock: a wall-clock step (NTP at
    /// boot, `date -s`, a VM resumed from a snapshot) must neither end every wait at once (a
    /// step forward: pollers spin) nor stretch a 50 ms poll into hours (a step back: shutdown
    /// and memory waits hang). The condition variables are made to measure on the same clock.
    static var clock: clockid_t { CLOCK_MONOTONIC }

    /// Initializes a condition variable whose timed waits take CLOCK_MONOTONIC deadlines.
    static func initializeMonotonic(_ condition: UnsafeMutablePointer<pthread_cond_t>) {
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, clock)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    static func deadline(afterMilliseconds milliseconds: Int) -> timespec {
        var now = timespec()
        clock_gettime(clock, &now)
        var deadline = now
        let total = Int(now.tv_nsec) + (milliseconds % 1000) * 1_000_000
        deadline.tv_sec += milliseconds / 1000 + total / 1_000_000_000
        deadline.tv_nsec = total % 1_000_000_000
        return deadline
    }
}

/// A condition variable used with a `ConditionLock`'s mutex (see `ConditionLock.wait(on:)`).
///
/// `@unchecked Sendable`: the variable lives in heap memory that never moves and is only
/// touched through pthread calls.
public final class ConditionVariable: @unchecked Sendable {
    let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        condition = .allocate(capacity: 1)
        ConditionLock.initializeMonotonic(condition)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    public func signal() { pthread_cond_signal(condition) }
}
