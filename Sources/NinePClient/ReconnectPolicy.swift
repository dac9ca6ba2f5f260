/// Whether and how a `NinePClient` comes back after losing its connection (see `Reconnector`).
/// Off unless set in `ClientConfiguration.reconnect`; the FUSE mount turns it on.
///
/// While the connection is down every call fails at once with a lost connection (ECONNRESET):
/// nothing waits for the server, so a process on a mount never hangs on a dead one. When it
/// is back, every attach is made again and every live fid walked again by its path; a fid
/// that no longer reaches the same file (qid path and type) is broken, never rebound.
public struct ReconnectPolicy: Sendable {
    /// The pause before the first attempt; doubled after each failed one up to `maxDelay`.
    public var firstDelay: Duration
    public var maxDelay: Duration
    /// Told when the connection is lost, when an attempt fails for a new reason (not once per
    /// attempt), and when it is back.
    public var onEvent: (@Sendable (ReconnectEvent) -> Void)?

    public init(firstDelay: Duration = .milliseconds(50), maxDelay: Duration = .seconds(2), onEvent: (@Sendable (ReconnectEvent) -> Void)? = nil) {
        self.firstDelay = firstDelay
        self.maxDelay = maxDelay
        self.onEvent = onEvent
    }
}

public enum ReconnectEvent: Sendable {
    /// The connection ended; reconnecting starts.
    case lost
    /// An attempt failed, for another reason than the one before.
    case attemptFailed(NinePError)
    /// Connected and attached again: `rewalked` fids reach their files again, `broken` do not
    /// (their calls fail with ESTALE, or EIO for open files).
    case reconnected(rewalked: Int, broken: Int)
}
