import CNinePShims
import Glibc
import NinePMemory
import NinePTransport

/// A small pool of threads for localio's large and direct reads and writes (docs/LOCALIO.md):
/// a pread of a megabyte, or one that waits for the disk (O_DIRECT), would otherwise hold one
/// of the few threads that run every task of the process (two on a two-core machine). Each
/// thread asks to be an IO_FLUSHER (PR_SET_IO_FLUSHER, which needs CAP_SYS_RESOURCE): memory
/// reclaim then does not wait on the IO it is doing.
///
/// Small reads and writes stay on the calling thread: measured on this project's benchmark
/// (Benchmarks/results/localio.md), the hand-off costs more than a 4 KiB pread from the page
/// cache takes. `threshold` is the size from which requests go to the pool.
///
/// `@unchecked Sendable`: `jobs` and `ioFlushers` are touched only with `lock` held.
final class LocalIOThreads: @unchecked Sendable {
    static let shared = LocalIOThreads(threads: 2)

    /// Requests of at least this many bytes go to the pool (`NINEP_LOCALIO_POOL_MIN` sets it
    /// for measurements: 0 sends everything, a huge value nothing). Direct IO always goes.
    static let threshold: Int = {
        if let text = getenv("NINEP_LOCALIO_POOL_MIN"), let value = Int(String(cString: text)), value >= 0 { return value }
        return 128 << 10
    }()

    struct Job {
        let fd: Int32
        let address: UnsafeMutableRawPointer
        let count: Int
        let offset: Int64
        let write: Bool
        let done: UnsafeContinuation<Int, Never>
    }

    private let lock = ConditionLock()
    private var jobs = JobQueue<Job>(capacity: 256)
    /// Threads that became IO_FLUSHERs (for the report; 0 without CAP_SYS_RESOURCE).
    private(set) var ioFlushers = 0

    private init(threads: Int) {
        for index in 0..<threads {
            DaemonThread.start(name: "9p-localio-\(index)") { [self] in
                let flusher = ninep_set_io_flusher() == 0
                if flusher { lock.withLock { ioFlushers += 1 } }
                runJobs()
            }
        }
    }

    /// pread (or pwrite) on a pool thread: the byte count, or -errno.
    func transfer(fd: Int32, _ address: UnsafeMutableRawPointer, count: Int, offset: Int64, write: Bool) async -> Int {
        await withUnsafeContinuation { done in
            let job = Job(fd: fd, address: address, count: count, offset: offset, write: write, done: done)
            lock.lock()
            jobs.push(job)
            lock.signal()
            lock.unlock()
        }
    }

    private func runJobs() {
        while true {
            lock.lock()
            while jobs.isEmpty { lock.wait() }
            let job = jobs.pop()!
            lock.unlock()
            job.done.resume(returning: Self.perform(fd: job.fd, job.address, count: job.count, offset: job.offset, write: job.write))
        }
    }

    /// The system call itself, retried on EINTR: the byte count, or -errno.
    static func perform(fd: Int32, _ address: UnsafeMutableRawPointer, count: Int, offset: Int64, write: Bool) -> Int {
        while true {
            let n = write ? pwrite(fd, address, count, off_t(offset)) : pread(fd, address, count, off_t(offset))
            if n >= 0 { return n }
            if errno != EINTR { return -Int(errno) }
        }
    }
}
