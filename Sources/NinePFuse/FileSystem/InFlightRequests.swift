import NinePClient
import Synchronization

/// The request each slot's worker serves, by the kernel's `unique`, so that an INTERRUPT can
/// cancel the one it names: the worker's `CallCanceller` then flushes its 9P call (Tflush) and
/// the request is answered EINTR once the server settles it or the client's flush grace runs
/// out, even when the server never answers. The worker itself is never cancelled: it goes on to
/// its slot's next request.
///
/// One entry per slot, fixed at start (a slot serves one request at a time), so nothing is
/// allocated per request; an INTERRUPT looks through the slots (8 by default). The kernel never
/// reuses a `unique` while its request is in flight.
final class InFlightRequests: Sendable {
    /// `unique` served on each slot, 0 when none. The kernel's uniques start at 1 (INIT's is
    /// the first) and are never 0.
    private let uniques: Mutex<[UInt64]>
    /// One per slot, bound to that slot's worker for its whole life.
    let cancellers: [CallCanceller]

    init(slots: Int) {
        uniques = Mutex([UInt64](repeating: 0, count: slots))
        cancellers = (0..<slots).map { _ in CallCanceller() }
    }

    /// Called by the reader (or by whoever hands a queued request to a slot) before the worker
    /// is told, so an INTERRUPT that comes next always finds it.
    func begin(slot: Int, unique: UInt64) {
        uniques.withLock { uniques in
            uniques[slot] = unique
            cancellers[slot].reset()
        }
    }

    /// Called by the worker before it replies: an INTERRUPT from now on has nothing to cancel.
    func finish(slot: Int) {
        uniques.withLock { $0[slot] = 0 }
    }

    /// INTERRUPT: cancels the request's calls if it is still being served. Returns whether it was.
    @discardableResult
    func cancel(_ unique: UInt64) -> Bool {
        // Under the lock, so that the slot cannot move on to another request in between (lock
        // order: this table, the canceller, the client's connection).
        uniques.withLock { uniques in
            guard let slot = uniques.firstIndex(of: unique) else { return false }
            cancellers[slot].cancel()
            return true
        }
    }

    var count: Int { uniques.withLock { $0.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } } }
}
