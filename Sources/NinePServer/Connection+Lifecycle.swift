import Glibc
import NinePTransport
import NinePWire

/// The life of a request after admission, in one place: serve, then reply, then the Rflush of
/// every Tflush that arrived meanwhile. This is the only code that decides "reply, then
/// Rflush" or "no reply, then Rflush".
extension Connection {
    /// Runs on a worker thread.
    func serve(_ context: RequestContext, on worker: Worker) {
        stateLock.withLock { context.worker = worker.thread }
        let length = worker.handle(context)
        complete(context, replyLength: length, worker: worker)
    }

    /// Sends the reply (unless suppressed), then one Rflush per flush of this tag, with the
    /// write lock held throughout so nothing can come between them.
    private func complete(_ context: RequestContext, replyLength: Int, worker: Worker) {
        writeLock.lock()
        let suppressed: Bool = stateLock.withLock {
            context.inFlight = false
            context.worker = nil
            inFlightCount -= 1
            worker.flushTags.removeAll(keepingCapacity: true)
            worker.flushTags.append(contentsOf: context.pendingFlushes)
            context.pendingFlushes.removeAll(keepingCapacity: true)
            if closing { stateLock.broadcast() }
            return context.suppressed
        }
        if !suppressed && replyLength > 0 {
            _ = SocketIO.writeFully(fd, UnsafeRawBufferPointer(rebasing: context.replyRegion[0..<replyLength]))
        }
        // Flushes queued before a Tversion belong to the ended session: no Rflush either.
        if !suppressed && !worker.flushTags.isEmpty {
            for flushTag in worker.flushTags {
                var writer = WireWriter(context.smallReply)
                if let length = try? Response.flush.encode(tag: flushTag, into: &writer) {
                    _ = SocketIO.writeFully(fd, UnsafeRawBufferPointer(rebasing: context.smallReply[0..<length]))
                }
            }
        }
        writeLock.unlock()
        releaseContext(context)
    }

    /// Tflush(oldtag), on the reader thread. If oldtag is in flight, the Rflush is queued
    /// behind its reply (it finishes; aborting is the Tflush issue's work); otherwise Rflush
    /// goes out at once. Returns false when the connection must close.
    func handleFlush(tag: UInt16, oldtag: UInt16) -> Bool {
        enum Decision { case replyNow, queued, violation }
        let decision: Decision = stateLock.withLock {
            if closing { return .queued }
            // Requests of a session ended by Tversion (suppressed) are not in flight for it.
            for context in contexts where context.inFlight && !context.suppressed {
                if context.tag == tag { return .violation }
                for pending in context.pendingFlushes where pending == tag { return .violation }
            }
            for context in contexts where context.inFlight && !context.suppressed {
                let flushesOldtag = context.pendingFlushes.contains(oldtag)
                if context.tag == oldtag || flushesOldtag {
                    // A flush of a flush joins the same queue: Rflushes go out in order.
                    guard context.pendingFlushes.count < RequestContext.maxPendingFlushes else { return .violation }
                    context.pendingFlushes.append(tag)
                    return .queued
                }
            }
            return .replyNow
        }
        switch decision {
        case .violation:
            closeForProtocolViolation("Tflush tag \(tag) reuses a tag in flight or floods one request with flushes")
            return false
        case .queued:
            return true
        case .replyNow:
            // Taking the write lock after the state lock is released: a worker that removed
            // oldtag from the table is already writing its reply under this lock, so this
            // Rflush goes out after it.
            var writer = WireWriter(flushReply)
            if let length = try? Response.flush.encode(tag: tag, into: &writer) {
                send(UnsafeRawBufferPointer(rebasing: flushReply[0..<length]))
            }
            return true
        }
    }

    /// Tversion, on the reader thread: negotiate msize, abort the old session (replies of
    /// requests still in flight are suppressed, every fid is clunked).
    func handleVersion(_ context: RequestContext, clientSize: UInt32, version: ByteView) {
        let offered = min(clientSize, server.configuration.maxMessageSize)
        // Below 4 KiB not even a Rgetattr with a long readlink fits: refuse the session.
        let known = version.equals("9P2000.L") && offered >= ServerConfiguration.minimumMessageSize
        stateLock.withLock {
            for other in contexts where other.inFlight { other.suppressed = true }
            msize = max(offered, UInt32(NineP.headerSize + 4 + 2 + 8))
            versionNegotiated = known
        }
        fids.clunkAll()
        var writer = WireWriter(context.smallReply)
        let reply: Response
        if known {
            reply = .version(msize: offered, version: ByteView(static: "9P2000.L"))
        } else {
            reply = .version(msize: offered, version: ByteView(static: "unknown"))
        }
        if let length = try? reply.encode(tag: context.message.tag, into: &writer) {
            send(UnsafeRawBufferPointer(rebasing: context.smallReply[0..<length]))
        }
        logger.debug("Tversion: msize \(offered), \(known ? "9P2000.L" : "unknown version \(version)")", metadata: ["peer": "\(peer)"])
    }
}
