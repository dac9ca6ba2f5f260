import Glibc
import NinePMemory
import NinePTransport

/// A task executor with its own thread, for callers that want the steady state to allocate
/// nothing: run the calling tasks with this executor as their preference
/// (`Task(executorPreference: client.executor)` or `group.addTask(executorPreference:)`).
///
/// Why: the reader thread wakes a waiting task by resuming its continuation, which enqueues the
/// task on its executor. On the global executor that is libdispatch, which allocates a
/// continuation for every enqueue from a thread outside its pool (two mallocs per call). Here
/// the enqueue is a store into a fixed ring and a condition signal.
public final class ClientExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable: `jobs` and `stopped` are read and written only with `lock` held
    // (a ConditionLock, itself thread-safe).
    private let lock = ConditionLock()
    private var jobs: JobQueue<UnownedJob>
    private var stopped = false

    init(capacity: Int = 4096, name: String = "9p-executor") {
        jobs = JobQueue(capacity: capacity)
        DaemonThread.start(name: name) { [self] in runJobs() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        lock.lock()
        jobs.push(job)
        lock.signal()
        lock.unlock()
    }

    /// Lets the thread finish once the queue is empty.
    func stop() {
        lock.lock()
        stopped = true
        lock.signal()
        lock.unlock()
    }

    private func runJobs() {
        while true {
            lock.lock()
            while jobs.isEmpty && !stopped { lock.wait() }
            let next = jobs.pop()
            let done = next == nil && stopped
            lock.unlock()
            if done { return }
            next?.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
