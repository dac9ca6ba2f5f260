import NinePMemory

/// A request a worker's thread read, handed to that worker's task.
public struct RequestHandoff: Sendable {
    public let header: FuseInHeader
}

/// One worker: a thread, the slot it reads requests into, and the task that serves them, run by
/// that same thread (the worker is the task's executor: `Task(executorPreference:)`).
///
/// So a request goes from read(2) on /dev/fuse to the reply's write(2) on one thread: the thread
/// reads, hands the request to its own task (a continuation resumed onto its own queue: no
/// wake-up of another thread), runs the task until the task waits on the server, sleeps until
/// the 9P reply wakes it (the one hand-off left: the client's reader thread to this one), and
/// runs the task on to the reply. When the task asks for its next request, the thread reads
/// again. The reading itself, and what to do with FORGET, INTERRUPT and a request read by the
/// last free worker, is the session's (`FuseSession.readOne`).
///
/// Jobs enqueued while the thread blocks in read(2) (none are expected: the task waits for its
/// request then) go to `fallback`, so nothing ever waits on a thread that waits on the kernel.
///
/// No allocation per request: the job queue is a fixed ring, the waiting continuation lives in
/// the task's frame, the handoff is one header.
public final class FuseWorker: TaskExecutor, @unchecked Sendable {
    // @unchecked Sendable: `jobs`, `waiting`, `reading`, `closed` and `taskEnded` are read and
    // written only with `lock` held.
    public let index: Int
    public let slot: FuseSlot
    private let fallback: (any TaskExecutor)?
    private let lock = ConditionLock()
    /// Past its ring (64) never expected: one task runs here, and what it starts.
    private var jobs = JobQueue<UnownedJob>(capacity: 64)
    /// The task waiting for its next request.
    private var waiting: UnsafeContinuation<RequestHandoff?, Never>? = nil
    /// The thread is in the session's read (blocked in read(2) on /dev/fuse).
    private var reading = false
    /// No more requests: the task gets nil.
    private var closed = false
    private var taskEnded = false

    init(index: Int, slot: FuseSlot, fallback: (any TaskExecutor)?) {
        self.index = index
        self.slot = slot
        self.fallback = fallback
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        lock.lock()
        if reading || taskEnded, let fallback {
            lock.unlock()
            fallback.enqueue(job)
            return
        }
        jobs.push(UnownedJob(job))
        lock.signal()
        lock.unlock()
    }

    /// The task's next request; nil once the session is over.
    func nextRequest() async -> RequestHandoff? {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<RequestHandoff?, Never>) in
            lock.lock()
            if closed {
                lock.unlock()
                continuation.resume(returning: nil)
                return
            }
            waiting = continuation
            // The thread may be sleeping (when this task ran elsewhere): it reads now.
            lock.signal()
            lock.unlock()
        }
    }

    /// The task's last act: the thread may end once its queue is empty.
    func taskFinished() {
        lock.lock()
        taskEnded = true
        lock.signal()
        lock.unlock()
    }

    /// The thread: runs the task's jobs; whenever the task waits for a request and nothing else
    /// is queued, `read` gets one (nil: the session is over, and the task is told so).
    func run(read: (FuseWorker) -> RequestHandoff?) {
        lock.lock()
        while true {
            if let job = jobs.pop() {
                lock.unlock()
                job.runSynchronously(on: asUnownedTaskExecutor())
                lock.lock()
                continue
            }
            if let continuation = waiting {
                waiting = nil
                if closed {
                    lock.unlock()
                    continuation.resume(returning: nil)
                    lock.lock()
                    continue
                }
                reading = true
                lock.unlock()
                let work = read(self)
                lock.lock()
                reading = false
                if work == nil { closed = true }
                lock.unlock()
                // Onto this worker's own queue: run next time round, on this thread.
                continuation.resume(returning: work)
                lock.lock()
                continue
            }
            if taskEnded {
                lock.unlock()
                return
            }
            lock.wait()
        }
    }
}
