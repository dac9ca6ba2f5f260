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
    // @unchecked Sendable: `ring`, `head`, `count` and `stopped` are read and written only
    // with `lock` held (a ConditionLock, itself thread-safe).
    private let lock = ConditionLock()
    private let ring: UnsafeMutablePointer<UnownedJob?>
    private let capacity: Int
    private var head = 0
    private var count = 0
    private var stopped = false
    /// Jobs that did not fit in the ring (only under overload; this allocates).
    private var overflow: [UnownedJob] = []

    init(capacity: Int = 4096, name: String = "9p-executor") {
        self.capacity = capacity
        ring = .allocate(capacity: capacity)
        ring.initialize(repeating: nil, count: capacity)
        DaemonThread.start(name: name) { [self] in runJobs() }
    }

    deinit {
        ring.deallocate()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        lock.lock()
        if count < capacity {
            ring[(head + count) % capacity] = job
            count += 1
        } else {
            overflow.append(job)
        }
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
            while count == 0 && overflow.isEmpty && !stopped { lock.wait() }
            var next: UnownedJob? = nil
            if count > 0 {
                next = ring[head]
                ring[head] = nil
                head = (head + 1) % capacity
                count -= 1
                if !overflow.isEmpty && count < capacity {
                    ring[(head + count) % capacity] = overflow.removeFirst()
                    count += 1
                }
            }
            let done = next == nil && stopped
            lock.unlock()
            if done { return }
            next?.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
