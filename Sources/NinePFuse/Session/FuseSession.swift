import CNinePShims
import Glibc
import NinePTransport
import Synchronization

/// One mounted FUSE connection: the descriptor from /dev/fuse, its workers (`FuseWorker`: a
/// thread, a slot and a task each, `slots + 1` of them), and reply writing.
///
/// Every worker not serving a request blocks in read(2) on the descriptor (the kernel hands each
/// request to one of them). The worker that reads a request serves it on its own thread, unless
/// it is the last one reading: then it queues the request (`FuseSlotPool.claim`) and reads on,
/// so INTERRUPTs are always read. INIT is answered by the session, FORGET/BATCH_FORGET/INTERRUPT
/// inline by whoever reads them (they need no slot and never wait on the server). The session
/// ends when the kernel says the mount is gone (ENODEV) or on DESTROY.
public final class FuseSession: Sendable {
    public let fd: Int32
    /// The canonical mount point.
    public let mountpoint: String
    public let configuration: FuseSessionConfiguration
    let pool: FuseSlotPool
    /// Worker threads still running; the last to end ends the session.
    private let running = Mutex(0)
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
        pool = FuseSlotPool(slots: configuration.workers, requestBytes: configuration.requestBytes, replyBytes: configuration.replyBytes, held: configuration.heldRequests, large: configuration.heldLargeRequests)
    }

    deinit {
        // Only when no handler task holds the session any more: no reply can go to a descriptor
        // number that was reused.
        close(fd)
    }

    /// Starts the workers; returns once INIT is answered, with what was agreed.
    public func start(handler: some FuseRequestHandler) async throws(FuseMountError) -> FuseInitOut {
        let workers = configuration.workers
        running.withLock { $0 = workers }
        for index in 0..<workers {
            let worker = FuseWorker(index: index, slot: pool.slot(index), fallback: handler.fallbackExecutor)
            Task(executorPreference: worker) { [self] in
                await handler.runWorker(index) { await serveRequests(worker, handler) }
                worker.taskFinished()
            }
            // PR_SET_IO_FLUSHER, when the daemon asked for it, is set by DaemonThread.
            DaemonThread.start(name: "fuse-worker-\(index)", stackSize: 1 << 20) { [self] in
                worker.run { worker in readOne(worker, handler) }
                workerEnded()
            }
        }
        return try await negotiated.wait().get()
    }

    /// Waits until the mount is gone (unmounted, aborted, or DESTROY).
    public func waitUntilEnded() async { _ = await ended.wait() }

    public var hasEnded: Bool { ended.value != nil }

    /// How requests are laid out under what INIT agreed (for decoding them).
    public var requestLayout: FuseRequest.Layout { layout.withLock { $0 } }

    /// Requests that could be taken on right now (workers reading, less the one that must).
    public var freeSlots: Int { max(0, pool.readingCount - 1) }

    /// Small requests read while every slot was busy, waiting for one.
    public var heldRequests: Int { pool.heldRequests }

    // MARK: Workers

    /// A worker's task: serves each request its thread hands it, then the held requests the
    /// pool gives it instead of reading again.
    private func serveRequests(_ worker: FuseWorker, _ handler: some FuseRequestHandler) async {
        while let work = await worker.nextRequest() {
            var header = work.header
            while true {
                await handler.serve(worker.slot, header, worker: worker.index, session: self)
                guard let held = nextHeld(worker, handler) else { break }
                header = held
            }
        }
    }

    /// The oldest held request, copied into the worker's slot and begun; nil when none (the
    /// worker reads again).
    private func nextHeld(_ worker: FuseWorker, _ handler: some FuseRequestHandler) -> FuseInHeader? {
        while pool.finished(worker.slot) {
            var cursor = FuseReaderCursor(worker.slot.requestBytes)
            // Its header was read once already, before it was queued.
            guard let header = try? FuseInHeader(reading: &cursor) else { continue }
            handler.begin(header, worker: worker.index)
            return header
        }
        return nil
    }

    /// A worker thread ended (the session is over for it).
    private func workerEnded() {
        pool.close()
        let last = running.withLock { running in
            running -= 1
            return running == 0
        }
        guard last else { return }
        if negotiated.value == nil { negotiated.set(.failure(FuseMountError("the mount went away before the kernel sent INIT"))) }
        ended.set(true)
    }

    /// Called on a worker's thread when its task wants a request: reads until there is one for
    /// this worker to serve (answering INIT, FORGET and INTERRUPT on the way, and queuing
    /// requests read while it is the last worker reading); nil when the session is over.
    private func readOne(_ worker: FuseWorker, _ handler: some FuseRequestHandler) -> RequestHandoff? {
        let slot = worker.slot
        while !pool.isClosed {
            guard readRequest(into: slot) else { return nil }
            var cursor = FuseReaderCursor(UnsafeRawBufferPointer(slot.request))
            guard slot.length >= FuseInHeader.wireSize, let header = try? FuseInHeader(reading: &cursor) else {
                log("ignoring a FUSE request of \(slot.length) bytes: shorter than its header")
                continue
            }
            switch header.opcode {
            case .`init`:
                answerInit(slot, header)
            case .forget, .batchForget, .interrupt:
                do {
                    let (_, request) = try FuseRequest.decode(slot.requestBytes, layout: layout.withLock { $0 })
                    if case let .interrupt(target) = request, pool.cancelHeld(target) {
                        // Still queued, never started: answered now.
                        writeReply(slot, length: (try? FuseReply.error(EINTR, unique: target, into: slot.reply)) ?? 0)
                    } else {
                        handler.handleInline(header, request)
                    }
                } catch {
                    log("ignoring a malformed \(header.opcode): \(error)")
                }
            case .destroy:
                writeReply(slot, length: (try? FuseReply.empty(unique: header.unique, into: slot.reply)) ?? 0)
                return nil
            default:
                guard negotiated.value != nil else {
                    writeReply(slot, length: (try? FuseReply.error(EIO, unique: header.unique, into: slot.reply)) ?? 0)
                    continue
                }
                switch pool.claim(slot, unique: header.unique) {
                case .serve:
                    // Before this thread serves it: an INTERRUPT read by another finds it.
                    handler.begin(header, worker: worker.index)
                    return RequestHandoff(header: header)
                case .queued:
                    continue
                case .closed:
                    return nil
                }
            }
        }
        return nil
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

    /// Writes the reply of `length` bytes built in `slot.reply`.
    public func reply(_ slot: FuseSlot, length: Int) {
        writeReply(slot, length: length)
    }

    /// Replies with an error (`errno` > 0).
    public func replyError(_ slot: FuseSlot, unique: UInt64, errno: Int32) {
        slot.payload = nil
        reply(slot, length: (try? FuseReply.error(errno, unique: unique, into: slot.reply)) ?? 0)
    }

    /// Writes `length` bytes of `slot.reply` to /dev/fuse. False when the kernel did not take
    /// it (ENOENT: the request was aborted, or interrupted and dropped; ENODEV: the mount is
    /// gone): whatever the reply handed over (a lookup count, a handle) is then not the
    /// kernel's, and the caller undoes it.
    @discardableResult
    public func writeReply(_ slot: FuseSlot, length: Int) -> Bool {
        guard length >= FuseOutHeader.wireSize else { return false }
        let payload = slot.payload
        slot.payload = nil
        while true {
            let n: Int
            if let payload, payload.count > 0, payload.count <= length - FuseOutHeader.wireSize {
                // The header (and whatever else is in `reply`) and the payload where it lies.
                var vectors = (
                    iovec(iov_base: slot.reply.baseAddress, iov_len: length - payload.count),
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: payload.baseAddress), iov_len: payload.count))
                n = withUnsafeMutablePointer(to: &vectors) { pair in
                    pair.withMemoryRebound(to: iovec.self, capacity: 2) { writev(fd, $0, 2) }
                }
            } else {
                n = write(fd, slot.reply.baseAddress, length)
            }
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
