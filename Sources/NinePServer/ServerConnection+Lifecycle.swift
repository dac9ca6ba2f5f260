import CNinePShims
import Glibc
import NinePMemory
import NinePTransport
import NinePWire

/// The life of a request after admission, in one place. A request is queued, then running on
/// a worker, possibly parked (waiting for a FIFO without a worker), and finally completed:
/// its reply (unless aborted or suppressed), then one Rflush per Tflush that named it.
///
/// A Tflush aborts what has not changed any state yet: a queued request, a parked one, one
/// inside an interruptible system call (a FIFO open). Those send no reply, only Rflush.
/// Anything else runs to its end: reply first, then Rflush. No reply ever follows an Rflush:
/// both go out under the write lock, the reply first, and an aborted request never replies.
extension ServerConnection {
    // MARK: Running

    /// Runs on a worker thread.
    func serve(_ context: RequestContext<Backend>, on worker: Worker<Backend>) {
        let start: Bool = stateLock.withLock {
            if context.aborted { return false }
            context.phase = .running
            context.worker = worker.thread
            return true
        }
        guard start else {
            respond(context, replyLength: 0)  // aborted while queued
            return
        }
        switch worker.handle(context) {
        case let .reply(length):
            respond(context, replyLength: length)
        case .parked:
            return  // the readiness waiter owns it now
        case .wouldBlock:
            // The reader tried it without waiting (see `servedByReader`); no Tflush can have
            // come meanwhile, since only the reader reads them.
            stateLock.withLock {
                context.phase = .queued
                context.worker = nil
            }
            server.queue.enqueue(context)
        }
    }

    /// A parked request whose descriptor became ready goes back to the work queue (or, if a
    /// Tflush aborted it meanwhile, ends with its Rflushes).
    func resume(_ context: RequestContext<Backend>) {
        let requeue: Bool = stateLock.withLock {
            if context.aborted || closing { return false }
            context.phase = .queued
            return true
        }
        if requeue {
            server.queue.enqueue(context)
        } else {
            respond(context, replyLength: 0)
        }
    }

    /// Called by a handler: park the request until `fd` is ready, unless it was aborted.
    /// Returns false if it must not park (aborted, closing, or the descriptor can't be
    /// watched); the handler then answers (the reply is dropped if aborted).
    ///
    /// A parked request keeps only its small reply buffer (a parked write has moved its data
    /// there), and that buffer goes into the arena's parking reserve when this connection
    /// has room in it: requests waiting on the outside world never hold shared memory.
    func park(_ context: RequestContext<Backend>, fd: Int32, events: UInt32) -> Bool {
        let result: Bool = stateLock.withLock {
            // A Tflush that came while the request ran was queued as "reply first"; but a
            // request about to wait has changed nothing yet, so it is aborted instead.
            if !context.pendingFlushes.isEmpty { context.aborted = true }
            if context.aborted || closing { return false }
            context.phase = .parked
            context.worker = nil
            // Registered under the state lock, so a Tflush sees either "parked and
            // cancellable" or "not parked": never a request in between.
            if !server.waiter.park(context, fd: fd, events: events) {
                context.phase = .running
                return false
            }
            keepOnlySmallReplyLocked(context)
            return true
        }
        server.dispatchDeferredGrants()  // buffers it gave back may start others
        return result
    }

    /// Gives back everything but a small reply buffer and moves that one into the parking
    /// reserve if this connection's share has room (state lock held). The request's message
    /// must no longer point into its receive buffer.
    func keepOnlySmallReplyLocked(_ context: RequestContext<Backend>) {
        if let buffer = context.receive {
            context.receive = nil
            server.arena.release(buffer, from: memoryWaiter)
        }
        // A reply buffer bigger than needed (a read that turned out to be a stream) is
        // traded for a small one when one is free; a stream read then reads what fits.
        if let reply = context.reply, reply.count > MemoryPlan.smallBufferBytes, let small = server.arena.tryAcquireSmall(for: memoryWaiter) {
            context.reply = small
            server.arena.release(reply, from: memoryWaiter)
        }
        if let reply = context.reply, reply.count == MemoryPlan.smallBufferBytes, !context.replyInParkingReserve,
           parkedInReserve < server.arena.plan.parkingPerConnection, server.arena.moveToParkingReserve() {
            context.replyInParkingReserve = true
            parkedInReserve += 1
        }
    }

    /// Around a system call that may block on the outside world and that a Tflush may
    /// interrupt (it changes nothing until it succeeds). Returns false if already aborted.
    func enterInterruptible(_ context: RequestContext<Backend>) -> Bool {
        let result: Bool = stateLock.withLock {
            if !context.pendingFlushes.isEmpty { context.aborted = true }
            if context.aborted { return false }
            context.interruptible = true
            // Waiting on the outside world: hold no shared memory meanwhile. The caller's
            // message (a Tlopen: fid and flags) holds no view into the receive buffer.
            keepOnlySmallReplyLocked(context)
            return true
        }
        server.dispatchDeferredGrants()  // buffers it gave back may start others
        return result
    }

    /// Returns true if the request was aborted during the call: its result must be undone.
    func leaveInterruptible(_ context: RequestContext<Backend>) -> Bool {
        stateLock.withLock {
            context.interruptible = false
            return context.aborted
        }
    }

    /// For the waiter's re-signalling: signal the worker if the aborted request still runs.
    func interruptIfStillRunning(_ context: RequestContext<Backend>) {
        stateLock.withLock {
            if context.inFlight, context.aborted, context.interruptible, let thread = context.worker {
                _ = ninep_pthread_kill(thread, ninep_interrupt_signal())
            }
        }
    }

    // MARK: Completing

    /// The one end of every admitted request (lib9p's respond()): the request leaves the tag
    /// table, and its reply (none when `replyLength` is 0, or when it was aborted or its
    /// session ended) then one Rflush per Tflush that named it join the output, all under the
    /// write lock, so a Tflush that finds the tag free has its Rflush queued behind them.
    /// Once written (`finish`), the context and its buffers go back. Frames that answer no
    /// admitted request (an Rflush of a free tag, an Rlerror for a malformed message, Rversion)
    /// go out through `deliver` alone.
    func respond(_ context: RequestContext<Backend>, replyLength: Int) {
        // The request is done with its message: a reply waiting for a slow client holds only
        // its reply buffer.
        if let buffer = context.receive {
            context.receive = nil
            server.arena.release(buffer, from: memoryWaiter)
            server.dispatchDeferredGrants()
        }
        writeLock.lock()
        let silent: Bool = stateLock.withLock {
            // Swap with the context's spare list (both reserved up front): no allocation.
            swap(&context.pendingFlushes, &context.flushesToSend)
            retire(context)
            return context.suppressed || context.aborted
        }
        let item = OutputItem<Backend>.reply(context, length: silent ? 0 : replyLength)
        if let statistics { record(context, into: statistics, replyLength: item.length) }
        let done = deliverLocked(item)
        writeLock.unlock()
        if context.aborted { server.waiter.stopInterrupting(context) }
        if done { finish(item) }
    }

    /// Counts a finished request and the Tflushes that named it (before its reply is written:
    /// once written, its buffer may serve another request).
    @inline(__always)
    private func record(_ context: RequestContext<Backend>, into statistics: RequestStatistics, replyLength: Int) {
        let reply = replyLength > 0 ? UnsafeRawBufferPointer(rebasing: context.replyRegion[0..<replyLength]) : nil
        statistics.recordRequest(type: context.requestType, nanoseconds: monotonicNanoseconds() &- context.admittedAt, reply: reply)
        statistics.recordFlushes(context.aborted ? .aborted : .answeredAfterReply, count: context.flushesToSend.count)
    }

    /// Takes a finished request out of the tag table (state lock held).
    private func retire(_ context: RequestContext<Backend>) {
        context.inFlight = false
        context.worker = nil
        context.phase = .idle
        context.interruptible = false
        context.pendingFlushes.removeAll(keepingCapacity: true)
        inFlightCount -= 1
        if closing { stateLock.broadcast() }
    }

    // MARK: Tflush

    /// Tflush(oldtag), on the reader thread, never waiting on a pool. Returns false when the
    /// connection must close (the flush's own tag is in use).
    func handleFlush(tag: UInt16, oldtag: UInt16) -> Bool {
        let decision: FlushDecision<Backend> = stateLock.withLock {
            if closing { return .queued }
            if tagInUseLocked(tag) { return .violation }
            var found: RequestContext<Backend>? = nil
            for candidate in contexts where candidate.inFlight && !candidate.suppressed {
                if candidate.tag == oldtag || candidate.pendingFlushes.contains(oldtag) {
                    found = candidate
                    break
                }
            }
            guard let target = found else { return .replyNow }
            guard target.pendingFlushes.count < RequestContext<Backend>.maxPendingFlushes else { return .violation }
            // Rflushes go out in the order their Tflushes came: a flush of a flush joins the
            // queue of the request the first flush named.
            target.pendingFlushes.append(tag)
            if target.aborted || target.suppressed { return .queued }
            switch target.phase {
            case .queued:
                target.aborted = true
                return server.queue.remove(target) ? .abortedNow(target) : .queued
            case .parked:
                target.aborted = true
                // Parked on a descriptor (the waiter) or as localio's Tlocalrevoke.
                return server.waiter.cancel(target) || revocationPoll.cancelLocked(target) ? .abortedNow(target) : .queued
            case .running where target.interruptible:
                target.aborted = true
                if let thread = target.worker { _ = ninep_pthread_kill(thread, ninep_interrupt_signal()) }
                server.waiter.keepInterrupting(target)
                return .queued
            case .waitingForMemory:
                target.aborted = true
                leaveMemoryLineLocked(target)
                return .abortedNow(target)
            case .running, .idle:
                return .queued  // reply first, then Rflush
            }
        }
        server.dispatchDeferredGrants()  // a request that left the memory line gave back its grant
        switch decision {
        case .violation:
            closeForProtocolViolation("Tflush tag \(tag) reuses a tag in flight or floods one request with flushes")
            return false
        case .queued:
            return true
        case let .abortedNow(context):
            respond(context, replyLength: 0)
            return true
        case .replyNow:
            statistics?.recordFlushes(.notInFlight, count: 1)
            // Queued after the state lock is released: a worker that removed oldtag from the
            // table did so holding the write lock and queued or wrote its reply before letting
            // go of it, so this Rflush goes out after that reply.
            deliver(.rflush(tag: tag))
            return true
        }
    }

    // MARK: Tversion

    /// Tversion, on the reader thread: negotiate msize, abort the old session (replies of
    /// requests still in flight are suppressed, every fid is clunked).
    func handleVersion(_ context: RequestContext<Backend>, clientSize: UInt32, version: ByteView) {
        let offered = min(clientSize, server.configuration.maxMessageSize)
        // Below 4 KiB not even a Rgetattr with a long readlink fits: refuse the session.
        // localio's version string (docs/LOCALIO.md) is 9P2000.L plus the extension: on a unix
        // socket the answer is the extension and a nonce memfd, elsewhere plain 9P2000.L.
        let wantsLocalIO = version.equals(NineP.versionLocalIO)
        let known = (version.equals("9P2000.L") || wantsLocalIO) && offered >= ServerConfiguration.minimumMessageSize
        stateLock.withLock {
            // Requests of the old session keep running to their end, but reply to nobody and
            // hold no tag: the new session may reuse every tag at once. Their Tflushes of the
            // old session are dropped with them.
            for other in contexts where other.inFlight {
                other.suppressed = true
                other.pendingFlushes.removeAll(keepingCapacity: true)
            }
            msize = max(offered, UInt32(NineP.headerSize + 4 + 2 + 8))
            versionNegotiated = known
        }
        // Outstanding requests that wait on the outside world end now (version(5): all
        // outstanding I/O is aborted); the others run to their end and reply to nobody.
        abortWaitingForClose()
        fids.clunkAll()
        var writer = WireWriter(context.replyBuffer)
        let reply: Response
        let memfd = localIO.negotiate(wantsExtension: known && wantsLocalIO)
        if memfd >= 0 {
            context.attachedDescriptor = memfd
            reply = .version(msize: offered, version: ByteView(static: NineP.versionLocalIO))
        } else if known {
            reply = .version(msize: offered, version: ByteView(static: "9P2000.L"))
        } else {
            reply = .version(msize: offered, version: ByteView(static: "unknown"))
        }
        statistics?.recordInline(type: .tversion, nanoseconds: monotonicNanoseconds() &- context.admittedAt)
        if let length = try? reply.encode(tag: context.message.tag, into: &writer) {
            context.replyOffset = 0  // written from the start of the reply buffer, as encoded
            deliver(.reply(context, length: length))
        } else {
            releaseContext(context)
        }
        logger.debug("Tversion: msize \(offered), \(known ? "9P2000.L" : "unknown version \(version)")", metadata: ["peer": "\(peer)"])
    }

    // MARK: Closing

    /// The connection is closing: requests that wait on the outside world end now, without a
    /// reply; running ones in an interruptible call are signalled.
    func abortWaitingForClose() {
        // The reader thread's own list, reserved for every context: closing allocates nothing.
        var ended = closingScratch
        closingScratch = []
        ended.removeAll(keepingCapacity: true)
        defer {
            ended.removeAll(keepingCapacity: true)
            closingScratch = ended
        }
        stateLock.withLock {
            for context in contexts where context.inFlight && !context.aborted {
                switch context.phase {
                case .queued:
                    context.aborted = true
                    if server.queue.remove(context) { ended.append(context) }
                case .parked:
                    context.aborted = true
                    if server.waiter.cancel(context) || revocationPoll.cancelLocked(context) { ended.append(context) }
                case .waitingForMemory:
                    context.aborted = true
                    _ = memoryLine.remove(context)
                    ended.append(context)
                case .running where context.interruptible:
                    context.aborted = true
                    if let thread = context.worker { _ = ninep_pthread_kill(thread, ninep_interrupt_signal()) }
                    server.waiter.keepInterrupting(context)
                default:
                    break
                }
            }
            if memoryLine.isEmpty { withdrawDeferredWaiterLocked() }
        }
        for context in ended { respond(context, replyLength: 0) }
        server.dispatchDeferredGrants()
    }
}

/// What a Tflush does (see `handleFlush`).
enum FlushDecision<Backend: FileSystemBackend> { case replyNow, queued, abortedNow(RequestContext<Backend>), violation }
