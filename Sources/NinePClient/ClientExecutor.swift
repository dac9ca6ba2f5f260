import Glibc
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
    // with `mutex` held; the mutex and condition live in heap memory that never moves.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private let ring: UnsafeMutablePointer<UnownedJob?>
    private let capacity: Int
    private var head = 0
    private var count = 0
    private var stopped = false
    /// Jobs that did not fit in the ring (only under overload; this allocates).
    private var overflow: [UnownedJob] = []

    init(capacity: Int = 4096, name: String = "9p-executor") {
        self.capacity = capacity
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
        ring = .allocate(capacity: capacity)
        ring.initialize(repeating: nil, count: capacity)
        DaemonThread.start(name: name) { [self] in runJobs() }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
        ring.deallocate()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(mutex)
        if count < capacity {
            ring[(head + count) % capacity] = job
            count += 1
        } else {
            overflow.append(job)
        }
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Lets the thread finish once the queue is empty.
    func stop() {
        pthread_mutex_lock(mutex)
        stopped = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    private func runJobs() {
        while true {
            pthread_mutex_lock(mutex)
            while count == 0 && overflow.isEmpty && !stopped { pthread_cond_wait(condition, mutex) }
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
            pthread_mutex_unlock(mutex)
            if done { return }
            next?.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
