import Glibc
import NinePWire

/// Everything one request needs from admission to reply: its buffers, its decoded message,
/// and the Tflush tags waiting for it. Contexts are created with their connection and reused;
/// nothing here is allocated per request.
///
/// `@unchecked Sendable`: a context is owned by exactly one thread at a time (the reader while
/// admitting, then the worker serving it); the hand-off goes through `WorkQueue`'s lock, which
/// orders the accesses. Fields read by other threads (`tag`, `inFlight`, `pendingFlushes`,
/// `worker`) are only touched with the connection's state lock held.
final class RequestContext: @unchecked Sendable {
    unowned let connection: Connection
    let index: Int
    let smallReceive: UnsafeMutableRawBufferPointer
    let smallReply: UnsafeMutableRawBufferPointer
    var largeReceive: UnsafeMutableRawBufferPointer?
    var largeReply: UnsafeMutableRawBufferPointer?
    var frameLength = 0
    var message = TMessage(tag: 0, request: .clunk(fid: 0))

    // Guarded by the connection's state lock.
    var tag: UInt16 = 0
    var inFlight = false
    /// Set when the reply must not be sent (Tversion reset the session).
    var suppressed = false
    var pendingFlushes: [UInt16]
    var worker: pthread_t? = nil

    static let maxPendingFlushes = 16

    init(connection: Connection, index: Int) {
        self.connection = connection
        self.index = index
        smallReceive = .allocate(byteCount: ServerConfiguration.smallBufferSize, alignment: 64)
        smallReply = .allocate(byteCount: ServerConfiguration.smallBufferSize, alignment: 64)
        pendingFlushes = []
        pendingFlushes.reserveCapacity(Self.maxPendingFlushes)
    }

    deinit {
        smallReceive.deallocate()
        smallReply.deallocate()
    }

    var receiveBuffer: UnsafeMutableRawBufferPointer { largeReceive ?? smallReceive }
    var replyBuffer: UnsafeMutableRawBufferPointer { largeReply ?? smallReply }
    var frame: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: receiveBuffer[0..<frameLength]) }
}
