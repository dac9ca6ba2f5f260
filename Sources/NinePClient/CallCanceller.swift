import Synchronization

/// An explicit cancellation handle for the calls of one caller that cannot cancel its task: a
/// long-lived worker serving one request after another (the FUSE mount's workers), whose task
/// must outlive the request it is told to abandon.
///
/// `cancel()` does to the call in progress exactly what cancelling its task does: Tflush is
/// sent, and the call returns CancellationError once the server settles it or the flush grace
/// passes (the tag stays reserved until Rflush); a caller still waiting for a request slot stops
/// waiting. Every later call throws CancellationError at once, until `reset()`.
///
/// A call finds its canceller in the task-local `CallCanceller.current`: bind it once for the
/// worker's whole life (`CallCanceller.$current.withValue(canceller) { ... }`), and reading it
/// costs nothing per call. Cancelling the task still works as before, with or without one.
///
/// Allocation-free: `cancel`, `reset` and the calls' attach/detach only take a lock.
public final class CallCanceller: Sendable {
    @TaskLocal public static var current: CallCanceller?

    /// What a cancel reaches right now.
    enum Target {
        case none
        /// A request on the wire (or about to be): flushed.
        case call(ClientConnection, slot: Int, tag: UInt16)
        /// A caller queued for a request slot: woken without one.
        case waiter(ClientConnection, id: UInt64)
    }

    private struct State {
        var cancelled = false
        var target = Target.none
    }

    private let state = Mutex(State())

    public init() {}

    /// Cancels the call in progress, if any, and every call after it until `reset()`.
    public func cancel() {
        let target = state.withLock { state in
            state.cancelled = true
            return state.target
        }
        fire(target)
    }

    /// Calls made from now on are not cancelled (a new piece of work begins).
    public func reset() {
        state.withLock { $0.cancelled = false }
    }

    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// The call now waits on `target`; when `cancel()` came first, it is cancelled at once.
    /// Never called with the connection's state lock held (the lock order is canceller, then
    /// connection).
    func attach(_ target: Target) {
        let cancelled = state.withLock { state in
            state.target = target
            return state.cancelled
        }
        if cancelled { fire(target) }
    }

    /// The call no longer waits on what it attached. A cancel that read the target just before
    /// still reaches only that call: the connection checks the tag (tags are handed out
    /// cyclically) and waiter ids are never reused.
    func detach() {
        state.withLock { $0.target = .none }
    }

    private func fire(_ target: Target) {
        switch target {
        case .none: break
        case let .call(connection, slot, tag): connection.cancelCall(slot: slot, tag: tag)
        case let .waiter(connection, id): connection.cancelSlotWait(id)
        }
    }
}
