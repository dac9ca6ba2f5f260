import CNinePShims
import Glibc
import NinePTransport
import Synchronization

/// One mounted FUSE connection: the descriptor from /dev/fuse, one reader thread, the fixed slots
/// it reads requests into, and reply writing.
///
/// The reader answers INIT itself, serves FORGET/BATCH_FORGET/INTERRUPT inline (they need no slot
/// of their own and never wait on the server) and hands every other request, with its slot, to
/// the handler. The session ends when the kernel says the mount is gone (ENODEV) or on DESTROY.
public final class FuseSession: Sendable {
    public let fd: Int32
    /// The canonical mount point.
    public let mountpoint: String
    public let configuration: FuseSessionConfiguration
    let pool: FuseSlotPool
    /// The reader's own buffer, read into when every slot is busy (never in the pool).
    let spare: FuseSlot
    let log: @Sendable (String) -> Void
    private let handler = Mutex<(any FuseRequestHandler)?>(nil)
    private let negotiated = OneShot<Result<FuseInitOut, FuseMountError>>()
    private let ended = OneShot<Bool>()
    private let layout = Mutex(FuseRequest.Layout())

    /// Allocates the slots; nothing is read until `start`.
    public init(fd: Int32, mountpoint: String, configuration: FuseSessionConfiguration, log: @escaping @Sendable (String) -> Void) {
        self.fd = fd
        self.mountpoint = mountpoint
        self.configuration = configuration
        self.log = log
        pool = FuseSlotPool(slots: configuration.slots, requestBytes: configuration.requestBytes, replyBytes: configuration.replyBytes, held: configuration.heldRequests, large: configuration.heldLargeRequests)
        spare = FuseSlot(index: -1, requestBytes: configuration.requestBytes, replyBytes: configuration.replyBytes)
    }

    deinit {
        // Only when no handler task holds the session any more: no reply can go to a descriptor
        // number that was reused.
        close(fd)
    }

    /// Starts the reader thread; returns once INIT is answered, with what was agreed.
    public func start(handler: some FuseRequestHandler) async throws(FuseMountError) -> FuseInitOut {
        self.handler.withLock { $0 = handler }
        // PR_SET_IO_FLUSHER, when the daemon asked for it, is set by DaemonThread.
        DaemonThread.start(name: "fuse-reader", stackSize: 1 << 20) { [self] in readLoop(handler) }
        return try await negotiated.wait().get()
    }

    /// Waits until the mount is gone (unmounted, aborted, or DESTROY).
    public func waitUntilEnded() async { _ = await ended.wait() }

    public var hasEnded: Bool { ended.value != nil }

    /// How requests are laid out under what INIT agreed (for decoding them).
    public var requestLayout: FuseRequest.Layout { layout.withLock { $0 } }

    /// Slots not holding a request right now.
    public var freeSlots: Int { pool.freeCount }

    /// Small requests read while every slot was busy, waiting for one.
    public var heldRequests: Int { pool.heldRequests }

    // MARK: Reader

    private func readLoop(_ handler: some FuseRequestHandler) {
        defer {
            pool.close()
            if negotiated.value == nil { negotiated.set(.failure(FuseMountError("the mount went away before the kernel sent INIT"))) }
            ended.set(true)
        }
        while !pool.isClosed {
            // A free slot if there is one; else the spare, so that INTERRUPTs and FORGETs are
            // read even while every slot waits on the server.
            let pooled = pool.tryTake()
            let buffer = pooled ?? spare
            guard readRequest(into: buffer) else {
                if let pooled { giveBack(pooled) }
                return
            }
            var cursor = FuseReaderCursor(UnsafeRawBufferPointer(buffer.request))
            guard buffer.length >= FuseInHeader.wireSize, let header = try? FuseInHeader(reading: &cursor) else {
                log("ignoring a FUSE request of \(buffer.length) bytes: shorter than its header")
                if let pooled { giveBack(pooled) }
                continue
            }
            switch header.opcode {
            case .`init`:
                answerInit(buffer, header)
                if let pooled { giveBack(pooled) }
            case .forget, .batchForget, .interrupt:
                do {
                    let (_, request) = try FuseRequest.decode(buffer.requestBytes, layout: layout.withLock { $0 })
                    if case let .interrupt(target) = request, pool.cancelHeld(target) {
                        // Still queued, never started: answered now.
                        writeReply(buffer, length: (try? FuseReply.error(EINTR, unique: target, into: buffer.reply)) ?? 0)
                    } else {
                        handler.handleInline(header, request)
                    }
                } catch {
                    log("ignoring a malformed \(header.opcode): \(error)")
                }
                if let pooled { giveBack(pooled) }
            case .destroy:
                writeReply(buffer, length: (try? FuseReply.empty(unique: header.unique, into: buffer.reply)) ?? 0)
                if let pooled { giveBack(pooled) }
                return
            default:
                guard negotiated.value != nil else {
                    writeReply(buffer, length: (try? FuseReply.error(EIO, unique: header.unique, into: buffer.reply)) ?? 0)
                    if let pooled { giveBack(pooled) }
                    continue
                }
                if let pooled {
                    handler.serve(pooled, header, session: self)
                } else if let slot = pool.admit(spare.requestBytes, unique: header.unique) {
                    handler.serve(slot, header, session: self)
                }
                // Else queued: the next slot given back serves it.
            }
        }
    }

    /// Reads one request; false when the session is over.
    private func readRequest(into slot: FuseSlot) -> Bool {
        while true {
            let n = read(fd, slot.request.baseAddress, slot.request.count)
            if n > 0 {
                slot.length = n
                return true
            }
            let code = n == 0 ? ENODEV : errno
            switch code {
            case EINTR, EAGAIN:
                continue
            case ENOENT:
                // The request was interrupted before we read it: the kernel dropped it.
                continue
            case ENODEV:
                return false
            default:
                log("reading /dev/fuse failed: \(String(cString: strerror(code))); ending the session")
                return false
            }
        }
    }

    private func answerInit(_ slot: FuseSlot, _ header: FuseInHeader) {
        let outcome: Result<FuseInitOut, FuseMountError>
        do {
            let (_, request) = try FuseRequest.decode(slot.requestBytes)
            guard case let .`init`(offer) = request else { throw FuseMountError("INIT did not decode as INIT") }
            let answer = try FuseInitNegotiation.reply(to: offer, configuration: configuration)
            log("FUSE \(offer.major).\(offer.minor) kernel, agreed on 7.\(answer.minor): max_write \(answer.maxWrite), max_pages \(answer.maxPages), flags 0x\(String(answer.flags.rawValue, radix: 16)) of offered 0x\(String(offer.flags.rawValue, radix: 16))")
            outcome = .success(answer)
        } catch let error as FuseMountError {
            outcome = .failure(error)
        } catch {
            outcome = .failure(FuseMountError("malformed INIT from the kernel: \(error)"))
        }
        switch outcome {
        case let .success(answer):
            layout.withLock { $0.setxattrExtended = answer.flags.contains(.setxattrExt) }
            writeReply(slot, length: (try? FuseReply.with(answer, unique: header.unique, into: slot.reply)) ?? 0)
        case .failure:
            writeReply(slot, length: (try? FuseReply.error(EPROTO, unique: header.unique, into: slot.reply)) ?? 0)
        }
        negotiated.set(outcome)
    }

    // MARK: Replies

    /// Writes the reply of `length` bytes built in `slot.reply` and gives the slot back (which
    /// may start a queued request on it).
    public func reply(_ slot: FuseSlot, length: Int) {
        writeReply(slot, length: length)
        giveBack(slot)
    }

    /// Replies with an error (`errno` > 0) and gives the slot back.
    public func replyError(_ slot: FuseSlot, unique: UInt64, errno: Int32) {
        reply(slot, length: (try? FuseReply.error(errno, unique: unique, into: slot.reply)) ?? 0)
    }

    /// Returns `slot` to the pool; when requests were queued, the oldest is served on it.
    public func giveBack(_ slot: FuseSlot) {
        var next = pool.release(slot)
        while let held = next {
            var cursor = FuseReaderCursor(held.requestBytes)
            guard let header = try? FuseInHeader(reading: &cursor), let handler = handler.withLock({ $0 }) else {
                next = pool.release(held)
                continue
            }
            handler.serve(held, header, session: self)
            return
        }
    }

    /// Writes `length` bytes of `slot.reply` to /dev/fuse. False when the kernel did not take
    /// it (ENOENT: the request was aborted, or interrupted and dropped; ENODEV: the mount is
    /// gone): whatever the reply handed over (a lookup count, a handle) is then not the
    /// kernel's, and the caller undoes it.
    @discardableResult
    public func writeReply(_ slot: FuseSlot, length: Int) -> Bool {
        guard length >= FuseOutHeader.wireSize else { return false }
        while true {
            let n = write(fd, slot.reply.baseAddress, length)
            if n >= 0 { return true }
            switch errno {
            case EINTR: continue
            case ENOENT, ENODEV: return false
            default:
                log("writing a FUSE reply of \(length) bytes failed: \(String(cString: strerror(errno)))")
                return false
            }
        }
    }
}
