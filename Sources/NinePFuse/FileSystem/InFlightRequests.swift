import Synchronization

/// The tasks serving requests, by the kernel's `unique`, so that an INTERRUPT can cancel the one
/// it names: its 9P call is then flushed (Tflush) and the request answered EINTR once the server
/// settles it or the client's flush grace runs out, even when the server never answers.
///
/// A task may finish before the reader has recorded it: `finish` then leaves a mark that
/// `insert` consumes, so no entry outlives its request. The kernel never reuses a `unique`
/// while its request is in flight.
final class InFlightRequests: Sendable {
    private enum Entry {
        case running(Task<Void, Never>)
        case finished
    }

    private let table = Mutex<[UInt64: Entry]>([:])

    init(capacity: Int) {
        table.withLock { $0.reserveCapacity(capacity * 2) }
    }

    /// Called by the reader right after starting the task.
    func insert(_ unique: UInt64, _ task: Task<Void, Never>) {
        table.withLock { table in
            if case .finished = table[unique] {
                table[unique] = nil
            } else {
                table[unique] = .running(task)
            }
        }
    }

    /// Called by the task before it replies.
    func finish(_ unique: UInt64) {
        table.withLock { table in
            if table.removeValue(forKey: unique) == nil { table[unique] = .finished }
        }
    }

    /// INTERRUPT: cancels the request's task if it is still running. Returns whether it was.
    @discardableResult
    func cancel(_ unique: UInt64) -> Bool {
        let task: Task<Void, Never>? = table.withLock { table in
            if case let .running(task) = table[unique] { return task }
            return nil
        }
        task?.cancel()
        return task != nil
    }

    var count: Int { table.withLock { $0.count } }
}
