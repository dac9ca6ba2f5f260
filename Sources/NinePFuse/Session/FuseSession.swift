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
    let log: @Sendable (String) -> Void
    private let negotiated = OneShot<Result<FuseInitOut, FuseMountError>>()
    private let ended = OneShot<Bool>()
    private let layout = Mutex(FuseRequest.Layout())

    /// Allocates the slots; nothing is read until `start`.
    public init(fd: Int32, mountpoint: String, configuration: FuseSessionConfiguration, log: @escaping @Sendable (String) -> Void) {
        self.fd = fd
        self.mountpoint = mountpoint
        self.configuration = configuration
        self.log = log
        pool = FuseSlotPool(slots: configuration.slots, requestBytes: configuration.requestBytes, replyBytes: configuration.replyBytes)
    }

    deinit {
        // Only when no handler task holds the session any more: no reply can go to a descriptor
        // number that was reused.
        close(fd)
    }

    /// Starts the reader thread; returns once INIT is answered, with what was agreed.
    public func start(handler: some FuseRequestHandler) async throws(FuseMountError) -> FuseInitOut {
        DaemonThread.start(name: "fuse-reader", stackSize: 1 << 20) { [self] in
            if ninep_set_io_flusher() != 0 {
                log("warning: PR_SET_IO_FLUSHER refused (\(String(cString: strerror(errno)))): under memory pressure the kernel may wait on this daemon's own writeback; it needs CAP_SYS_RESOURCE")
            }
            readLoop(handler)
        }
        return try await negotiated.wait().get()
    }

    /// Waits until the mount is gone (unmounted, aborted, or DESTROY).
    public func waitUntilEnded() async { _ = await ended.wait() }

    public var hasEnded: Bool { ended.value != nil }

    /// How requests are laid out under what INIT agreed (for decoding them).
    public var requestLayout: FuseRequest.Layout { layout.withLock { $0 } }

    /// Slots not holding a request right now.
    public var freeSlots: Int { pool.freeCount }

    // MARK: Reader

    private func readLoop(_ handler: some FuseRequestHandler) {
        defer {
            pool.close()
            if negotiated.value == nil { negotiated.set(.failure(FuseMountError("the mount went away before the kernel sent INIT"))) }
            ended.set(true)
        }
        while let slot = pool.take() {
            guard readRequest(into: slot) else {
                pool.put(slot)
                return
            }
            var cursor = FuseReaderCursor(UnsafeRawBufferPointer(slot.request))
            guard slot.length >= FuseInHeader.wireSize, let header = try? FuseInHeader(reading: &cursor) else {
                log("ignoring a FUSE request of \(slot.length) bytes: shorter than its header")
                pool.put(slot)
                continue
            }
            switch header.opcode {
            case .`init`:
                answerInit(slot, header)
            case .forget, .batchForget, .interrupt:
                do {
                    let (_, request) = try FuseRequest.decode(slot.requestBytes, layout: layout.withLock { $0 })
                    handler.handleInline(header, request)
                } catch {
                    log("ignoring a malformed \(header.opcode): \(error)")
                }
                pool.put(slot)
            case .destroy:
                reply(slot, length: (try? FuseReply.empty(unique: header.unique, into: slot.reply)) ?? 0)
                return
            default:
                guard negotiated.value != nil else {
                    replyError(slot, unique: header.unique, errno: EIO)
                    continue
                }
                handler.serve(slot, header, session: self)
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
            reply(slot, length: (try? FuseReply.with(answer, unique: header.unique, into: slot.reply)) ?? 0)
        case .failure:
            replyError(slot, unique: header.unique, errno: EPROTO)
        }
        negotiated.set(outcome)
    }

    // MARK: Replies

    /// Writes the reply of `length` bytes built in `slot.reply` and gives the slot back.
    public func reply(_ slot: FuseSlot, length: Int) {
        defer { pool.put(slot) }
        guard length >= FuseOutHeader.wireSize else { return }
        while true {
            let n = write(fd, slot.reply.baseAddress, length)
            if n >= 0 { return }
            switch errno {
            case EINTR: continue
            // ENOENT: the request was interrupted and the kernel gave up on it; ENODEV: the
            // mount is gone. Neither is this request's business any more.
            case ENOENT, ENODEV: return
            default:
                log("writing a FUSE reply of \(length) bytes failed: \(String(cString: strerror(errno)))")
                return
            }
        }
    }

    /// Replies with an error (`errno` > 0) and gives the slot back.
    public func replyError(_ slot: FuseSlot, unique: UInt64, errno: Int32) {
        reply(slot, length: (try? FuseReply.error(errno, unique: unique, into: slot.reply)) ?? 0)
    }
}
