import CNinePShims
import Glibc

/// Starts POSIX threads for the daemon: each blocks termination signals (the signal thread
/// handles them) and may set PR_SET_IO_FLUSHER.
public enum DaemonThread {
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
