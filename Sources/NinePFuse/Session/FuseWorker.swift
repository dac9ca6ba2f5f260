import Synchronization

/// A request handed to a slot's worker.
struct RequestHandoff: Sendable {
    let slot: FuseSlot
    let header: FuseInHeader
    let session: FuseSession
}

/// Where one slot's long-lived worker task waits for its next request: one handoff at a time
/// (a slot holds one request), posted by the reader thread (or by the worker that gave a slot
/// back to a queued request), taken by the worker.
///
/// No allocation per request: the waiting continuation lives in the worker's own frame and is
/// resumed onto the client's executor (a fixed ring), the handoff is three words.
final class RequestMailbox: Sendable {
    private struct State {
        var pending: RequestHandoff? = nil
        var waiting: UnsafeContinuation<RequestHandoff?, Never>? = nil
        var closed = false
    }

    private let state = Mutex(State())

    /// Hands `work` to the worker. The slot's previous request is finished (one per slot).
    func post(_ work: RequestHandoff) {
        let waiter = state.withLock { state -> UnsafeContinuation<RequestHandoff?, Never>? in
            if let waiting = state.waiting {
                state.waiting = nil
                return waiting
            }
            precondition(state.pending == nil, "a slot was handed a second request while it held one")
            state.pending = work
            return nil
        }
        waiter?.resume(returning: work)
    }

    /// The next request; nil once the mailbox is closed and empty.
    func next() async -> RequestHandoff? {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<RequestHandoff?, Never>) in
            let ready = state.withLock { state -> RequestHandoff?? in
                if let work = state.pending {
                    state.pending = nil
                    return .some(work)
                }
                if state.closed { return .some(nil) }
                state.waiting = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Ends the worker once it has taken what was posted.
    func close() {
        let waiter = state.withLock { state -> UnsafeContinuation<RequestHandoff?, Never>? in
            state.closed = true
            defer { state.waiting = nil }
            return state.waiting
        }
        waiter?.resume(returning: nil)
    }
}
