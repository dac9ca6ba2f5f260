import CNinePShims
import Glibc
import NinePMemory
import NinePTransport

/// Requests that wait on the outside world (a FIFO or socket with nothing to read, or no room
/// to write) wait here, in one epoll set, instead of on a worker thread: a blocked reader
/// never takes a worker or a large buffer from anyone. When the descriptor is ready the
/// request goes back to the work queue and runs again from the start; a Tflush cancels it
/// here, without a reply.
///
/// The same thread re-sends the interrupt signal to workers whose request was aborted while
/// they were inside an interruptible system call (a FIFO open): a signal that lands just before
/// the call starts would otherwise be lost.
final class ReadinessWaiter<Backend: FileSystemBackend>: @unchecked Sendable {
    // @unchecked Sendable: `parked`, `aborting`, `abortingCount` and `stopped` are guarded by
    // `lock`; `resignalling` is the waiter thread's own; `epoll` and `wakeup` are immutable.
    private let epoll: Int32
    private let wakeup: Int32
    private let lock = ConditionLock()
    /// Reserved for every context there can be: parking and cancelling never allocate.
    private var parked: [Int32: RequestContext<Backend>] = [:]
    /// Aborted requests whose worker is signalled until they complete; a fixed array, so a
    /// Tflush or a closing connection allocates nothing to add one.
    private let aborting: UnsafeMutableBufferPointer<RequestContext<Backend>?>
    private var abortingCount = 0
    /// The waiter thread's copy of `aborting`, signalled outside the lock.
    private let resignalling: UnsafeMutableBufferPointer<RequestContext<Backend>?>
    private var stopped = false

    /// `contexts`: every request context of every connection (the most that can wait here).
    init(contexts: Int) {
        epoll = ninep_epoll_create()
        wakeup = ninep_eventfd()
        parked.reserveCapacity(contexts)
        aborting = .allocate(capacity: max(contexts, 1))
        aborting.initialize(repeating: nil)
        resignalling = .allocate(capacity: max(contexts, 1))
        resignalling.initialize(repeating: nil)
    }

    deinit {
        Glibc.close(epoll)
        Glibc.close(wakeup)
        _ = aborting.deinitialize()
        aborting.deallocate()
        _ = resignalling.deinitialize()
        resignalling.deallocate()
    }

    func start(name: String) {
        DaemonThread.start(name: name) { [self] in run() }
    }

    /// Parks `context` until `fd` is ready for `events` (EPOLLIN or EPOLLOUT). The caller has
    /// set the context's phase to `.parked` under its connection's state lock. Returns false
    /// when the descriptor cannot be watched (the caller then answers with the error).
    func park(_ context: RequestContext<Backend>, fd: Int32, events: UInt32) -> Bool {
        let watched = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard watched >= 0 else { return false }
        return lock.withLock {
            context.parkedFd = watched
            parked[watched] = context
            if ninep_epoll_add(epoll, watched, events) != 0 {
                parked[watched] = nil
                context.parkedFd = -1
                Glibc.close(watched)
                return false
            }
            return true
        }
    }

    /// Takes a parked request out (Tflush, connection close); false if it was no longer
    /// parked here (it became ready and went back to the queue).
    func cancel(_ context: RequestContext<Backend>) -> Bool {
        lock.withLock {
            let fd = context.parkedFd
            guard fd >= 0, parked[fd] === context else { return false }
            parked[fd] = nil
            context.parkedFd = -1
            _ = ninep_epoll_del(epoll, fd)
            Glibc.close(fd)
            return true
        }
    }

    /// Keeps signalling the worker of an aborted request until it completes.
    func keepInterrupting(_ context: RequestContext<Backend>) {
        lock.withLock {
            for index in 0..<abortingCount where aborting[index] === context { return }
            aborting[abortingCount] = context
            abortingCount += 1
        }
        var one: UInt64 = 1
        _ = Glibc.write(wakeup, &one, 8)
    }

    func stopInterrupting(_ context: RequestContext<Backend>) {
        lock.withLock {
            for index in 0..<abortingCount where aborting[index] === context {
                abortingCount -= 1
                aborting[index] = aborting[abortingCount]
                aborting[abortingCount] = nil
                return
            }
        }
    }

    func stop() {
        lock.withLock { stopped = true }
        var one: UInt64 = 1
        _ = Glibc.write(wakeup, &one, 8)
    }

    @_specialize(exported: false, kind: full, where Backend == PosixBackend)  // see Worker.run
    private func run() {
        var ready = [Int32](repeating: 0, count: 64)
        var wakeupArmed = false
        while true {
            let interrupting = lock.withLock { stopped ? -1 : abortingCount }
            if interrupting < 0 { return }
            if !wakeupArmed {
                // One-shot like the others: re-armed after each wakeup.
                _ = ninep_epoll_add(epoll, wakeup, UInt32(NINEP_EPOLLIN))
                wakeupArmed = true
            }
            let count = ready.withUnsafeMutableBufferPointer {
                ninep_epoll_wait(epoll, $0.baseAddress, Int32($0.count), interrupting > 0 ? 20 : -1)
            }
            if interrupting > 0 { resignal() }
            guard count > 0 else { continue }
            for index in 0..<Int(count) {
                let fd = ready[index]
                if fd == wakeup {
                    var value: UInt64 = 0
                    _ = Glibc.read(wakeup, &value, 8)
                    _ = ninep_epoll_del(epoll, wakeup)
                    wakeupArmed = false
                    continue
                }
                let context: RequestContext<Backend>? = lock.withLock {
                    guard let context = parked.removeValue(forKey: fd) else { return nil }
                    context.parkedFd = -1
                    _ = ninep_epoll_del(epoll, fd)
                    Glibc.close(fd)
                    return context
                }
                if let context { context.connection.resume(context) }
            }
        }
    }

    private func resignal() {
        let count: Int = lock.withLock {
            for index in 0..<abortingCount { resignalling[index] = aborting[index] }
            return abortingCount
        }
        for index in 0..<count {
            resignalling[index]?.connection.interruptIfStillRunning(resignalling[index]!)
            resignalling[index] = nil
        }
    }
}
