import Glibc
import NinePTransport
import Synchronization

/// Connecting and the Tversion exchange are blocking system calls (connect, send, recv), bounded
/// by the call timeout. They run on a thread of their own so that the task that asked can stop
/// waiting at once when it is cancelled (^C in `ninep`), even against a server that accepted the
/// connection and never answers: the caller gets `CancellationError` immediately, the socket is
/// shut down to wake the thread, and a connection that completes anyway is closed.
final class CancellableOpen: Sendable {
    private struct State {
        var continuation: CheckedContinuation<ClientConnection, any Error>?
        var cancelled = false
        /// The socket being connected or negotiated, while the opening thread owns it.
        var socket: Int32 = -1
    }

    private let state = Mutex(State())

    /// `ClientConnection.open(configuration)`, abandoned on cancellation.
    static func open(_ configuration: ClientConfiguration, connectedSocket: Int32?) async throws -> ClientConnection {
        let pending = CancellableOpen()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ClientConnection, any Error>) in
                let cancelledAlready = pending.state.withLock { state -> Bool in
                    if state.cancelled { return true }
                    state.continuation = continuation
                    return false
                }
                if cancelledAlready {
                    if let connectedSocket { Glibc.close(connectedSocket) }
                    continuation.resume(throwing: CancellationError())
                    return
                }
                let started = DaemonThread.tryStart(name: "9p-connect") {
                    let result = Result { () throws(NinePError) in
                        try ClientConnection.open(configuration, connectedSocket: connectedSocket, watch: pending)
                    }
                    pending.finish(result)
                }
                if started == nil {
                    // No thread (thread limit, no memory): fail this connect, not the process.
                    if let connectedSocket { Glibc.close(connectedSocket) }
                    pending.finish(.failure(NinePError(.connectionLost, errno: EAGAIN, operation: .connect, path: configuration.address.description)))
                }
            }
        } onCancel: {
            pending.cancel()
        }
    }

    /// The opening thread has a socket (it may block on it from now on).
    func began(_ fd: Int32) -> Bool {
        state.withLock { state in
            if state.cancelled { return false }
            state.socket = fd
            return true
        }
    }

    /// The opening thread is about to close the socket or hand it to the connection: a late
    /// cancellation must not shut down a descriptor number that may soon name another file.
    func ended() {
        state.withLock { $0.socket = -1 }
    }

    private func finish(_ result: Result<ClientConnection, NinePError>) {
        let continuation = state.withLock { state in
            defer { state.continuation = nil }
            return state.continuation
        }
        if let continuation {
            continuation.resume(with: result.mapError { $0 as any Error })
        } else if case let .success(connection) = result {
            connection.shutdown()  // the caller has gone
        }
    }

    private func cancel() {
        let continuation = state.withLock { state in
            state.cancelled = true
            // Wakes a thread blocked in recv or send on it; the thread closes it.
            if state.socket >= 0 { _ = shutdown(state.socket, Int32(SHUT_RDWR)) }
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(throwing: CancellationError())
    }
}
