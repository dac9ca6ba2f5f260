import CNinePShims
import Glibc
import Synchronization

/// Starts POSIX threads for the daemon: each blocks termination signals (the signal thread
/// handles them) and may set PR_SET_IO_FLUSHER.
public enum DaemonThread {
    /// PR_SET_IO_FLUSHER on every thread started from now on (see `setIOFlusherOnNewThreads`).
    private static let ioFlusherWanted = Atomic<Bool>(false)
    private static let ioFlusherRefused = Atomic<Int>(0)
    private static let ioFlusherErrno = Atomic<Int32>(0)

    /// From now on every thread started here sets PR_SET_IO_FLUSHER first (the kernel then
    /// neither throttles its writes nor lets its allocations recurse into IO: a daemon serving
    /// IO must not wait on its own writeback); the calling thread too. Refusals (it needs
    /// CAP_SYS_RESOURCE) are counted, for the caller to report once (`ioFlusherRefusals`).
    public static func setIOFlusherOnNewThreads() {
        ioFlusherWanted.store(true, ordering: .sequentiallyConsistent)
        trySetIOFlusher()
    }

    /// Threads (the caller of `setIOFlusherOnNewThreads` included) on which PR_SET_IO_FLUSHER
    /// was refused, and the errno of the first refusal.
    public static var ioFlusherRefusals: (threads: Int, errno: Int32) {
        (ioFlusherRefused.load(ordering: .sequentiallyConsistent), ioFlusherErrno.load(ordering: .sequentiallyConsistent))
    }

    /// First thing on every new thread.
    static func prepareThread() {
        if ioFlusherWanted.load(ordering: .sequentiallyConsistent) { trySetIOFlusher() }
    }

    private static func trySetIOFlusher() {
        if ninep_set_io_flusher() != 0 {
            let code = errno
            if ioFlusherRefused.wrappingAdd(1, ordering: .sequentiallyConsistent).oldValue == 0 {
                ioFlusherErrno.store(code, ordering: .sequentiallyConsistent)
            }
        }
    }

    /// Boxed entry point handed through pthread_create's void*.
    final class Entry {
        let body: () -> Void
        let name: String
        init(_ body: @escaping () -> Void, name: String) {
            self.body = body
            self.name = String(decoding: name.utf8.prefix(15), as: UTF8.self)
        }
    }

    /// Starts a detached thread running `body`; returns its pthread_t. Traps if the system
    /// refuses a thread: for start-up, where nothing can go on without it.
    @discardableResult
    public static func start(name: String, stackSize: Int = 512 * 1024, _ body: @escaping @Sendable () -> Void) -> pthread_t {
        guard let thread = tryStart(name: name, stackSize: stackSize, body) else {
            preconditionFailure("pthread_create failed for thread \(name)")
        }
        return thread
    }

    /// Starts a detached thread, or returns nil if the system refuses one (no memory, thread
    /// limit): for threads started while serving, where the caller can refuse the work.
    public static func tryStart(name: String, stackSize: Int = 512 * 1024, _ body: @escaping @Sendable () -> Void) -> pthread_t? {
        let entry = Unmanaged.passRetained(Entry(body, name: name)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setstacksize(&attributes, stackSize)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { raw in
            _ = ninep_block_signals_for_thread()
            DaemonThread.prepareThread()
            let entry = Unmanaged<Entry>.fromOpaque(raw!).takeRetainedValue()
            _ = entry.name.withCString { ninep_set_thread_name($0) }
            entry.body()
            return nil
        }, entry)
        pthread_attr_destroy(&attributes)
        guard rc == 0 else {
            Unmanaged<Entry>.fromOpaque(entry).release()
            return nil
        }
        return thread
    }
}
