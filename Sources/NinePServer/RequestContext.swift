import Glibc
import NinePMemory
import NinePWire

/// Everything one request needs from admission to reply: its buffers (granted by the memory
/// arena before it starts), its decoded message, and the Tflush tags waiting for it. Contexts
/// are created with their connection slot and reused; nothing here is allocated per request.
///
/// `@unchecked Sendable`: a context is owned by exactly one thread at a time (the reader while
/// admitting, then the worker serving it); the hand-off goes through `WorkQueue`'s lock, which
/// orders the accesses. Fields read by other threads (`tag`, `inFlight`, `pendingFlushes`,
/// `worker`) are only touched with the connection's state lock held.
final class RequestContext<Backend: FileSystemBackend>: @unchecked Sendable {
    unowned let connection: ServerConnection<Backend>
    let index: Int
    /// Granted at admission, given back when the request ends (the receive buffer earlier
    /// when the request waits on the outside world).
    var receive: UnsafeMutableRawBufferPointer?
    var reply: UnsafeMutableRawBufferPointer?
    /// The reply buffer sits in the arena's parking reserve (see `ServerConnection.park`).
    var replyInParkingReserve = false
    var frameLength = 0
    /// Where the frame starts in the receive buffer: a Twrite is placed so that its payload
    /// starts on a 4096-byte boundary, which NINEP_O_DIRECT descriptors require of user buffers.
    var frameOffset = 0
    /// Where the reply starts in the reply buffer: an Rread's data lands 4096-aligned.
    var replyOffset = 0
    var message = TMessage(tag: 0, request: .clunk(fid: 0))
    /// The request's message type and when it was admitted (CLOCK_MONOTONIC ns), for the
    /// request statistics; set only when the server collects them.
    var requestType: UInt8 = 0
    var admittedAt: UInt64 = 0
    /// The frame of a request read whole with its header (a Tread or Treaddir, 23 bytes),
    /// which needs no receive buffer.
    private let inlineFrame = UnsafeMutableRawBufferPointer.allocate(byteCount: RequestContext<Backend>.inlineFrameBytes, alignment: 8)
    static var inlineFrameBytes: Int { 32 }

    // Guarded by the connection's state lock.
    var tag: UInt16 = 0
    var inFlight = false
    /// Set when the reply must not be sent (Tversion reset the session).
    var suppressed = false
    var pendingFlushes: [UInt16]
    /// The Rflushes to write after the reply: swapped with `pendingFlushes` when the request
    /// leaves the tag table, emptied when its output is done (both lists reserved up front).
    var flushesToSend: [UInt16]
    var worker: pthread_t? = nil
    var phase = Phase.idle
    /// Set by a Tflush that aborts this request: it sends no reply, only the Rflushes.
    var aborted = false
    /// True while a worker is in a system call that a signal may interrupt (a FIFO open).
    var interruptible = false
    /// The duplicate descriptor this request is parked on, while parked.
    var parkedFd: Int32 = -1
    /// A descriptor that goes with the reply's first byte (SCM_RIGHTS: localio's Rversion
    /// memfd, Rlocalgrant's file); closed when the context is released. -1: none.
    var attachedDescriptor: Int32 = -1

    enum Phase {
        case idle
        /// Admitted, waiting for a worker.
        case queued
        /// A worker is serving it.
        case running
        /// Waiting, without a worker, for a FIFO or socket to become ready.
        case parked
        /// Admitted without its large reply buffer, waiting for one (`ServerConnection.memoryLine`).
        case waitingForMemory
    }

    static var maxPendingFlushes: Int { 16 }
    /// Buffers are 4096-aligned and this much larger than their message capacity.
    static var alignmentSlack: Int { MemoryPlan.alignmentSlack }

    init(connection: ServerConnection<Backend>, index: Int) {
        self.connection = connection
        self.index = index
        pendingFlushes = []
        pendingFlushes.reserveCapacity(Self.maxPendingFlushes)
        flushesToSend = []
        flushesToSend.reserveCapacity(Self.maxPendingFlushes)
    }

    var receiveBuffer: UnsafeMutableRawBufferPointer { receive! }
    var replyBuffer: UnsafeMutableRawBufferPointer { reply! }
    var frame: UnsafeRawBufferPointer {
        guard let receive else { return UnsafeRawBufferPointer(rebasing: inlineFrame[0..<frameLength]) }
        return UnsafeRawBufferPointer(rebasing: receive[frameOffset..<(frameOffset + frameLength)])
    }

    /// Keeps a frame read whole with its header (at most `inlineFrameBytes`).
    func keepInline(_ bytes: UnsafeRawBufferPointer) {
        UnsafeMutableRawBufferPointer(rebasing: inlineFrame[0..<bytes.count]).copyMemory(from: bytes)
    }

    deinit { inlineFrame.deallocate() }
    var replyRegion: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: replyBuffer[replyOffset...])
    }

    /// The frame offset that puts a message's payload on an aligned boundary.
    static func alignedFrameOffset(type: UInt8) -> Int {
        type == MessageType.twrite.rawValue ? alignmentSlack - NineP.writeRequestOverhead : 0
    }
}
