import CNinePShims
import Glibc

/// A mutex around a value, like Synchronization's `Mutex`, for short critical sections that
/// many threads hit at once (a connection's fid table, the client's tag table).
///
/// Why not `Mutex`: on Linux it is a priority-inheritance futex, and every contended lock is a
/// system call into the kernel's rt-mutex code. Under `ninep bench` getattr with 16 requests in
/// flight, ninepd spent 39% of its CPU there. An adaptive pthread mutex spins a little first,
/// which is what a section of a few hundred nanoseconds needs.
///
/// `@unchecked Sendable`: the value lives in its own heap cell and is only reached through
/// `withLock`, with the mutex held; the mutex is a pthread mutex that never moves.
public final class AdaptiveMutex<State: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let state: UnsafeMutablePointer<State>

    public init(_ initial: consuming State) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        ninep_mutex_init_adaptive(mutex)
        state = .allocate(capacity: 1)
        state.initialize(to: initial)
    }

    deinit {
        state.deinitialize(count: 1)
        state.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inlinable @inline(__always)
    public func withLock<R: ~Copyable, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body(&statePointer.pointee)
    }

    @usableFromInline var statePointer: UnsafeMutablePointer<State> { state }
    @usableFromInline func lock() { pthread_mutex_lock(mutex) }
    @usableFromInline func unlock() { pthread_mutex_unlock(mutex) }
}
