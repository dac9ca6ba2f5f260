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
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
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

    static func deadline(afterMilliseconds milliseconds: Int) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
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
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    public func signal() { pthread_cond_signal(condition) }
}
