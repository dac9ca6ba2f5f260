import Glibc
import Synchronization

/// Callers that read their own replies (`ClientConfiguration.callersRead`).
///
/// Normally the connection's reader thread receives every reply and wakes the caller waiting
/// for it: two thread wake-ups per round trip (the reader's and the caller's). A caller whose
/// task has a thread of its own (the FUSE mount's workers: each is the only task of its
/// thread) may instead read the socket itself while it waits, when nobody else reads it: its
/// reply then resumes its task onto its own thread, which needs no wake-up, and the reader
/// thread stays parked. One thread reads at a time (the connection's `baton`, under the state
/// lock): the reader thread, a caller, or nobody when no reply is awaited.
///
/// A leading caller reads every reply that comes (waking the callers they are for, as the
/// reader thread would) until its own call is settled: its reply, its Rflush, its flush grace
/// ended by the housekeeper, or the connection lost. It polls the socket with a short timeout so
/// that it notices a call settled without a frame (the grace). Then it hands the socket to the
/// reader thread if replies are still awaited, else to nobody.
public enum CallerReads {
    /// Bind to true in a task that is the only task of a thread it may block (never on Swift's
    /// cooperative pool or a shared executor): its calls may read the socket themselves.
    @TaskLocal public static var allowed = false
}

extension ClientConnection {
    /// How long a leading caller waits for the socket before it looks at its call again.
    static let leadPollMilliseconds: Int32 = 20

    /// Reads replies on this thread until the call in `slot` is settled (and the reply of the
    /// request `following` it, if any, is in: see `leadSettled`), then lets go of the socket.
    func lead(until slot: Int, following: Int = -1) {
        callsLed.add(1, ordering: .relaxed)
        var readable = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let settled = state.withLock { $0.leadSettled(slot, following: following) }
            if settled { break }
            readable.revents = 0
            let n = poll(&readable, 1, Self.leadPollMilliseconds)
            if n > 0 {
                guard receiveFrame(nil) else {
                    shutdown()
                    break
                }
            }
        }
        if state.withLock({ $0.releaseReading(from: .caller) }) { wakeReader() }
    }
}
