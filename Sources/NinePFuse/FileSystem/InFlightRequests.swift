import NinePClient
import Synchronization

/// The request each worker serves, by the kernel's `unique`, so that an INTERRUPT can
/// cancel the one it names: the worker's `CallCanceller` then flushes its 9P call (Tflush) and
/// the request is answered EINTR once the server settles it or the client's flush grace runs
/// out, even when the server never answers. The worker itself is never cancelled: it goes on to
/// its next request.
///
/// One entry per worker, fixed at start (a worker serves one request at a time), so nothing is
/// allocated per request; an INTERRUPT looks through the workers (9 by default). The kernel never
/// reuses a `unique`.
///
/// Several workers read /dev/fuse at once, so an INTERRUPT can be read by one worker before the
/// worker that read its request has begun it: an INTERRUPT that finds nothing is remembered
/// (the last `pendingCapacity`), and `begin` of that request cancels it at once.
final class InFlightRequests: Sendable {
    /// The kernel's uniques start at 1 (INIT's is the first) and are never 0.
    private struct State {
        /// `unique` served by each worker, 0 when none.
        var uniques: [UInt64]
        /// INTERRUPTs that matched no request (yet), a ring; 0: an empty place.
        var pending: [UInt64]
        var nextPending = 0
    }

    private let state: Mutex<State>
    /// One per worker, bound to it for its whole life.
    let cancellers: [CallCanceller]
    static let pendingCapacity = 16

    init(workers: Int) {
        state = Mutex(State(uniques: [UInt64](repeating: 0, count: workers), pending: [UInt64](repeating: 0, count: Self.pendingCapacity)))
        cancellers = (0..<workers).map { _ in CallCanceller() }
    }

    /// Called on the reading thread before the worker serves the request, so an INTERRUPT that
    /// comes next always finds it; one that came first cancels it now.
    func begin(worker: Int, unique: UInt64) {
        state.withLock { state in
            state.uniques[worker] = unique
            cancellers[worker].reset()
            // Indexed, not searched with a closure: nothing generic on the request path.
            for index in 0..<state.pending.count where state.pending[index] == unique {
                state.pending[index] = 0
                cancellers[worker].cancel()
            }
        }
    }

    /// Called by the worker before it replies: an INTERRUPT from now on has nothing to cancel.
    func finish(worker: Int) {
        state.withLock { $0.uniques[worker] = 0 }
    }

    /// INTERRUPT: cancels the request's calls if it is still being served. Returns whether it was.
    @discardableResult
    func cancel(_ unique: UInt64) -> Bool {
        // Under the lock, so that the worker cannot move on to another request in between (lock
        // order: this table, the canceller, the client's connection).
        state.withLock { state in
            for worker in 0..<state.uniques.count where state.uniques[worker] == unique {
                cancellers[worker].cancel()
                return true
            }
            // Not begun yet (or answered already: then the entry is never matched).
            state.pending[state.nextPending] = unique
            state.nextPending = (state.nextPending + 1) % state.pending.count
            return false
        }
    }

    var count: Int { state.withLock { $0.uniques.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } } }
}
