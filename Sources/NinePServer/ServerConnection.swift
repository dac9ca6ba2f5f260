import CNinePShims
import Glibc
import Logging
import NinePMemory
import NinePTransport
import NinePWire

/// One client connection: a reader thread that admits requests, the contexts they run in, the
/// fid table, and the locks that order replies.
///
/// Lock order: `writeLock` before `stateLock`, never the reverse. The reader never holds
/// `stateLock` while it waits for `writeLock`.
final class ServerConnection<Backend: FileSystemBackend>: @unchecked Sendable {
    // @unchecked Sendable: mutable fields are guarded by `stateLock` (contexts' shared fields,
    // `freeContexts`, `closing`, `socketOpen`, `msize`, `inFlightCount`, `parkedInReserve`, `memoryLine`), by `writeLock`
    // (the outbox and `writerStopping`), or owned by the reader thread (`headerScratch`). The
    // session fields (`fd`, `peer`, `id`) are written only while the slot is idle, before the
    // reader starts the session under `assignment`'s lock, and read-only while it runs.
    unowned let server: FileServer<Backend>
    private(set) var fd: Int32 = -1
    private(set) var peer = PeerAddress.none
    private(set) var id = 0
    /// A slot of the preallocated table (reused for the next client) or a connection
    /// allocated beyond it (its reader thread ends with it).
    let preallocated: Bool
    let fids: FidTable<Backend>
    /// This slot's request counts (nil when the server collects no request metrics); moved
    /// into the server's totals when a client's session ends.
    let statistics: RequestStatistics?
    /// localio's state for the session (docs/LOCALIO.md).
    let localIO = LocalIOSession()
    /// localio's outstanding Tlocalrevoke, if any (guarded by `stateLock`).
    let revocationPoll = RevocationPoll<Backend>()
    let stateLock = ConditionLock()
    let writeLock = ConditionLock()
    /// Fixed for the slot's life. A raw buffer rather than an Array: scanning it does not go
    /// through Array's read coroutine, which allocates in unoptimised builds.
    let contexts: UnsafeMutableBufferPointer<RequestContext<Backend>>
    private var freeContexts: [Int] = []
    var inFlightCount = 0
    var closing = false
    /// Whether `fd` is this session's open socket (false once the reader closed it).
    var socketOpen = false
    var msize: UInt32
    var versionNegotiated = false
    /// Requests whose remaining buffer sits in the arena's parking reserve.
    var parkedInReserve = 0
    /// Replies waiting for the socket, first in first out (see ServerConnection+Output): a ring with
    /// a place for every context and for `loneFrames` lone Rflushes or Rlerrors.
    let outbox: UnsafeMutableBufferPointer<OutputItem<Backend>>
    var outboxHead = 0
    var outboxCount = 0
    /// Lone frames in the outbox (at most `loneFrames`).
    var outboxLone = 0
    /// Bytes of the outbox's head already written (it was begun without waiting).
    var headSent = 0
    var writerStopping = false
    static var loneFrames: Int { 64 }
    /// Requests ended by `abortWaitingForClose` (reader thread only; reserved at start).
    var closingScratch: [RequestContext<Backend>] = []
    /// Requests admitted without their (large) reply buffer, waiting for one in the memory
    /// arena through `deferredWaiter`, oldest first (guarded by `stateLock`).
    var memoryLine: WorkLine<Backend>
    /// This connection's place in the arena's FIFO for `memoryLine`'s head; it counts against
    /// the same share as `memoryWaiter`.
    private(set) var deferredWaiter: MemoryWaiter! = nil
    /// Requests admitted and waiting for a worker (guarded by the work queue's lock).
    var workLine: WorkLine<Backend>
    /// The reader's place in the memory arena's FIFO.
    let memoryWaiter = MemoryWaiter()
    /// Reader-owned scratch: a header, and the body of a Tread/Treaddir read ahead to size
    /// its reply before asking for memory.
    private let headerScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 32, alignment: 8)
    /// The reader thread's own worker state, for the requests it serves itself (see
    /// `servedByReader`); made on the reader thread when it starts.
    private var readerWorker: Worker<Backend>?
    /// Hands a client to an idle slot's reader thread.
    private let assignment = ConditionLock()
    private var assigned = false

    init(server: FileServer<Backend>, preallocated: Bool) {
        self.server = server
        self.preallocated = preallocated
        let configuration = server.configuration
        self.fids = FidTable(limit: configuration.maxFidsPerConnection, preallocated: configuration.preallocatedFidsPerConnection, backend: server.backend)
        self.msize = configuration.maxMessageSize
        self.statistics = configuration.requestMetrics ? RequestStatistics() : nil
        let count = configuration.maxRequestsPerConnection
        contexts = .allocate(capacity: count)
        workLine = WorkLine(capacity: count)
        memoryLine = WorkLine(capacity: count)
        closingScratch.reserveCapacity(count)
        outbox = .allocate(capacity: count + Self.loneFrames)
        outbox.initialize(repeating: .none)
        freeContexts.reserveCapacity(count)
        for index in 0..<count { freeContexts.append(count - 1 - index) }
        // `self` is complete once every stored property is set: the contexts point back to it.
        deferredWaiter = MemoryWaiter(deferredFor: memoryWaiter, owner: self)
        for index in 0..<count {
            (contexts.baseAddress! + index).initialize(to: RequestContext(connection: self, index: index))
        }
    }

    deinit {
        _ = contexts.deinitialize()
        workLine.deallocate()
        memoryLine.deallocate()
        contexts.deallocate()
        _ = outbox.deinitialize()
        outbox.deallocate()
        headerScratch.deallocate()
    }

    /// What one connection slot costs, for the memory plan.
    static func slotBytes(_ configuration: ServerConfiguration) -> Int {
        let context = 256 + 2 * RequestContext<Backend>.maxPendingFlushes * 2
        let fid = MemoryLayout<FidEntry<Backend>>.stride + MemoryLayout<Int>.stride + 48
        let outbox = (configuration.maxRequestsPerConnection + loneFrames) * MemoryLayout<OutputItem<Backend>>.stride
        return 1024 + outbox + configuration.maxRequestsPerConnection * context + min(configuration.maxFidsPerConnection, configuration.preallocatedFidsPerConnection) * fid
            + Worker<Backend>.scratchBytes(direntCapacity: 0)  // the reader's own (readerWorker)
    }

    var logger: Logger { server.logger }

    // MARK: Sessions

    /// Gives this idle slot a client; its reader thread starts serving it.
    func assign(fd: Int32, peer: PeerAddress, id: Int) {
        assignment.withLock {
            self.fd = fd
            self.peer = peer
            self.id = id
            localIO.begin(socket: fd)
            stateLock.withLock {
                socketOpen = true
                closing = false
                msize = server.configuration.maxMessageSize
                versionNegotiated = false
            }
            server.arena.activate(memoryWaiter)
            // The writer's blocking sends give up on a peer that takes nothing for this long.
            SocketIO.setSendTimeout(fd, milliseconds: server.configuration.clientTimeoutMilliseconds)
            if server.isStopping {
                // Accepted as the server began to stop: its snapshot of the connections may
                // have missed this session, so it stops reading at once by itself.
                shutdownSocket(Int32(SHUT_RD))
                stateLock.withLock { closing = true }
            }
            assigned = true
            assignment.signal()
        }
    }

    /// The reader thread's life: serve each client assigned to this slot in turn. A
    /// connection beyond the table serves one client and ends.
    @_specialize(exported: false, kind: full, where Backend == PosixBackend)  // see Worker.run
    func readerThread() {
        readerWorker = Worker(server: server, direntCapacity: 0, onlyWithoutWaiting: true)
        // It serves Tlcreate with O_EXCL (`servedByReader`): the client's mode, unmasked again.
        readerWorker?.clearThreadUmask()
        while true {
            let proceed: Bool = assignment.withLock {
                while !assigned && !server.isStopping { assignment.wait() }
                return assigned
            }
            guard proceed else { return }
            readLoop()
            server.arena.deactivate(memoryWaiter)
            server.dispatchDeferredGrants()
            assignment.withLock { assigned = false }
            if !preallocated { stopWriter() }
            server.connectionClosed(self)
            if !preallocated { return }
        }
    }

    /// Wakes an idle reader so it sees the server stopping.
    func wakeIdleReader() {
        assignment.withLock { assignment.broadcast() }
    }

    // MARK: Reading and admission

    /// The reader thread's loop for one client: read a frame, admit it, hand it to the workers.
    func readLoop() {
        while let context = readNextRequest() {
            admit(context)
        }
        shutDownAfterReading()
    }

    /// Reads the next request that needs a worker. Tflush is served right here, from the
    /// reader's own buffer, so it never waits for a context or a pool buffer. Anything else
    /// first gets a request context and every buffer it needs (receive and reply) from the
    /// memory arena; while it waits for them, the connection is not read.
    private func readNextRequest() -> RequestContext<Backend>? {
        while true {
            guard readStream(UnsafeMutableRawBufferPointer(rebasing: headerScratch[0..<NineP.headerSize]), startsFrame: true) else {
                return nil
            }
            let size = headerScratch.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian
            let type = headerScratch[4]
            let tag = headerScratch.loadUnaligned(fromByteOffset: 5, as: UInt16.self).littleEndian
            let limit = stateLock.withLock { msize }
            if size < UInt32(NineP.headerSize) {
                logger.warning("closing connection: frame size \(size) is below the 7-byte header", metadata: ["peer": "\(peer)"])
                return nil
            }
            if size > limit {
                // The stream cannot be trusted past this point: answer, then close.
                logger.warning("closing connection: message of \(size) bytes exceeds msize \(limit)", metadata: ["peer": "\(peer)"])
                deliver(.rlerror(tag: tag, errno: LinuxErrno.EMSGSIZE))
                return nil
            }
            if type == MessageType.tflush.rawValue && size == 9 {
                let started = statistics == nil ? 0 : monotonicNanoseconds()
                guard readStream(UnsafeMutableRawBufferPointer(rebasing: headerScratch[7..<9]), startsFrame: false) else {
                    return nil
                }
                let oldtag = headerScratch.loadUnaligned(fromByteOffset: 7, as: UInt16.self).littleEndian
                // Counted before it is handled: its Rflush may be queued (and seen by the client)
                // inside handleFlush, and a client that saw it must find it counted. Its time is
                // the reader's taking it in; what an Rflush waits for is the flushed request's.
                statistics?.recordInline(type: .tflush, nanoseconds: monotonicNanoseconds() &- started)
                if !handleFlush(tag: tag, oldtag: oldtag) { return nil }
                continue
            }
            // A Tread or Treaddir is read whole (23 bytes) so its count sizes the reply.
            var readAhead = NineP.headerSize
            var reply = BufferClass.small
            if (type == MessageType.tread.rawValue || type == MessageType.treaddir.rawValue) && size == 23 {
                guard readStream(UnsafeMutableRawBufferPointer(rebasing: headerScratch[7..<23]), startsFrame: false) else {
                    return nil
                }
                readAhead = 23
                reply = replyClass(type: type, limit: limit)
            }
            if readAhead == Int(size) {
                return admitReadAhead(size: readAhead, reply: reply)
            }
            let offset = RequestContext<Backend>.alignedFrameOffset(type: type)
            let receive: BufferClass = Int(size) + offset > MemoryPlan.smallBufferBytes ? .large : .small
            guard let context = acquireContext() else { return nil }
            let need = MemoryNeed(receive: receive, reply: reply)
            guard let grant = server.arena.acquire(need, waiter: memoryWaiter, site: MemorySite.of(need), stillWanted: { stillWanted() }) else {
                releaseContext(context)
                return nil
            }
            context.receive = grant.receive
            context.reply = grant.reply
            server.dispatchDeferredGrants()  // waiting, it may have let others' grants through
            let buffer = context.receiveBuffer
            UnsafeMutableRawBufferPointer(rebasing: buffer[offset...])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: headerScratch[0..<readAhead]))
            if Int(size) > readAhead {
                let body = UnsafeMutableRawBufferPointer(rebasing: buffer[(offset + readAhead)..<(offset + Int(size))])
                guard readStream(body, startsFrame: false) else {
                    releaseContext(context)
                    return nil
                }
            }
            context.frameLength = Int(size)
            context.frameOffset = offset
            return context
        }
    }

    /// A Tread or Treaddir read whole into `headerScratch`: it needs no receive buffer (its
    /// frame is kept in the context). A large reply buffer it takes now if one is free within
    /// the connection's share; otherwise the request is admitted without it and waits for one
    /// in `memoryLine`, while the reader goes on reading: a Tflush behind it is read and
    /// answered (it aborts the request), even while the connection's replies are stuck.
    private func admitReadAhead(size: Int, reply: BufferClass) -> RequestContext<Backend>? {
        guard let context = acquireContext() else { return nil }
        context.frameLength = size
        context.frameOffset = 0
        context.keepInline(UnsafeRawBufferPointer(rebasing: headerScratch[0..<size]))
        let need = MemoryNeed(receive: .none, reply: reply)
        if reply == .large {
            context.reply = server.arena.tryAcquire(need, for: memoryWaiter, site: MemorySite.of(need))?.reply
            return context  // without a reply buffer: `admit` puts it in `memoryLine`
        }
        guard let grant = server.arena.acquire(need, waiter: memoryWaiter, site: MemorySite.of(need), stillWanted: { stillWanted() }) else {
            releaseContext(context)
            return nil
        }
        context.reply = grant.reply
        return context
    }

    /// Reads exactly `buffer.count` bytes of the stream; false when the session must end. The
    /// first byte of a frame may take as long as the client likes (idle connections are
    /// never dropped); within a frame, a pause longer than the client timeout disconnects
    /// the peer (one that sends part of a frame and stops holds a reader and a context).
    private func readStream(_ buffer: UnsafeMutableRawBufferPointer, startsFrame: Bool) -> Bool {
        let limit = server.configuration.clientTimeoutMilliseconds
        switch SocketIO.readFully(fd, into: buffer, stallMilliseconds: limit, firstByteWaits: startsFrame) {
        case .complete:
            return true
        case .closed:
            return false
        case .stalled:
            server.logWhenMemoryAllows {
                logger.warning("disconnecting client: it sent part of a message and then nothing for \(limit / 1000) s (--client-timeout)", metadata: ["peer": "\(peer)", "connection": "\(id)"])
            }
            return false
        }
    }

    /// The reply buffer a Tread/Treaddir in `headerScratch` needs: large only when its count
    /// does not fit a small one. A read of a FIFO or socket may wait on the outside world:
    /// it takes a small buffer whatever it asks for (a short read is legal).
    private func replyClass(type: UInt8, limit: UInt32) -> BufferClass {
        let fid = headerScratch.loadUnaligned(fromByteOffset: 7, as: UInt32.self).littleEndian
        let count = Int(headerScratch.loadUnaligned(fromByteOffset: 19, as: UInt32.self).littleEndian)
        let isRead = type == MessageType.tread.rawValue
        if isRead && fids.isStreaming(fid) { return .small }
        let offset = isRead ? RequestContext<Backend>.alignmentSlack - NineP.readReplyOverhead : 0
        let needed = min(count, Int(limit) - NineP.readReplyOverhead) + NineP.readReplyOverhead + offset
        return needed > MemoryPlan.smallBufferBytes ? .large : .small
    }

    /// Asked while the reader waits for memory: false once the peer hung up or the
    /// connection is closing, which ends the wait.
    private func stillWanted() -> Bool {
        if stateLock.withLock({ closing }) { return false }
        var poller = pollfd(fd: fd, events: Int16(NINEP_POLLRDHUP), revents: 0)
        if poll(&poller, 1, 0) == 1 && poller.revents & Int16(NINEP_POLLRDHUP | POLLHUP | POLLERR) != 0 { return false }
        return true
    }

    /// Decodes, checks the tag, serves Tversion inline, and queues everything else.
    private func admit(_ context: RequestContext<Backend>) {
        let message: TMessage
        do {
            // The reader has already checked the size field against the msize.
            message = try TMessage.decode(context.frame, msize: UInt32(context.frameLength))
        } catch {
            let tag = context.frame.loadUnaligned(fromByteOffset: 5, as: UInt16.self).littleEndian
            logger.debug("rejecting malformed message: \(error)", metadata: ["peer": "\(peer)", "tag": "\(tag)"])
            if context.frame[4] == MessageType.tflush.rawValue {
                // Tflush is never answered with Rlerror: a malformed one ends the connection.
                closeForProtocolViolation("malformed Tflush (\(context.frameLength) bytes)")
            } else if tagInUse(tag) {
                closeForProtocolViolation("malformed message reuses tag \(tag) that is in flight")
            } else {
                deliver(.rlerror(tag: tag, errno: error.errno))
            }
            releaseContext(context)
            return
        }
        context.message = message
        if statistics != nil {
            context.requestType = context.frame[4]
            context.admittedAt = monotonicNanoseconds()
        }
        if case let .version(clientSize, version) = message.request {
            handleVersion(context, clientSize: clientSize, version: version)  // releases the context
            return
        }
        // An Rread's data lands 4096-aligned in the reply buffer (for NINEP_O_DIRECT).
        if case .read = message.request {
            context.replyOffset = RequestContext<Backend>.alignmentSlack - NineP.readReplyOverhead
        } else {
            context.replyOffset = 0
        }
        // Whether nothing else of this connection is in flight: only then may the reader
        // serve the request itself, so that it cannot overtake an earlier request (a Tread
        // sent right behind the Tlopen of its fid, a Tgetattr behind a Tsetattr).
        var alone = false
        let admitted: Bool = stateLock.withLock {
            if closing { return false }
            if tagInUseLocked(message.tag) { return false }
            alone = inFlightCount == 0
            context.tag = message.tag
            context.inFlight = true
            context.phase = .queued
            context.aborted = false
            context.interruptible = false
            context.parkedFd = -1
            context.suppressed = false
            inFlightCount += 1
            return true
        }
        guard admitted else {
            if !stateLock.withLock({ closing }) {
                closeForProtocolViolation("request reuses tag \(message.tag) that is still in flight")
            }
            releaseContext(context)
            return
        }
        if context.reply == nil {
            waitForReplyBuffer(context)
        } else if alone, Self.servedByReader(message.request), let readerWorker {
            serve(context, on: readerWorker)
        } else {
            server.queue.enqueue(context)
        }
    }

    /// Requests the reader serves itself instead of handing them to a worker, when nothing
    /// else of the connection is in flight: short system calls on descriptors and names
    /// (statx, close, openat2 with O_PATH, readlinkat, fstatfs) that never wait on another
    /// process, a FIFO or a lock. Handing one to a worker costs two thread wake-ups, more than
    /// the request itself; and while the reader serves it, no Tflush can name it, so Tflush
    /// loses nothing. Anything that may wait (opens, writes, locks, directory reads, changes)
    /// goes to the workers.
    ///
    /// A Tread is tried too, from the page cache only (preadv2 RWF_NOWAIT): when the data is
    /// not there, or the fid is a FIFO, a socket or opened O_DIRECT, the handler says
    /// `Worker.wouldBlock` and the request goes to the workers unchanged.
    ///
    /// Two changes are served here as well, because a create-and-remove loop pays the two
    /// wake-ups on every one of them: Tunlinkat (unlinkat(2) of a name: it waits on nothing
    /// but the file system, as statx does) and Tlcreate with O_EXCL (openat(2) with O_CREAT,
    /// O_EXCL and O_NOFOLLOW makes a new regular file or fails: it never opens a FIFO, a
    /// device or a file another process holds, so it cannot wait on another process either).
    /// Tlcreate without O_EXCL may open an existing FIFO, which blocks until a peer comes:
    /// that stays with the workers. Serving them here keeps Tflush exact for the same reason
    /// as above: the reader reads no Tflush while it runs them, and a Tflush read afterwards
    /// finds the request answered. Only this connection waits meanwhile (each has its own
    /// reader), as it would for a worker's answer; the other connections do not.
    static func servedByReader(_ request: Request) -> Bool {
        switch request {
        case .getattr, .clunk, .walk, .statfs, .readlink, .read, .unlinkat: true
        case let .lcreate(_, _, flags, _, _): flags & OpenFlags.exclusive != 0
        default: false
        }
    }

    func tagInUse(_ tag: UInt16) -> Bool { stateLock.withLock { tagInUseLocked(tag) } }

    /// A tag is in use while its request is in flight or while it is a Tflush waiting for
    /// its Rflush. Requests of a session that a Tversion ended (suppressed) no longer hold
    /// their tags: the new session may reuse them (version(5)).
    func tagInUseLocked(_ tag: UInt16) -> Bool {
        for context in contexts where context.inFlight && !context.suppressed {
            if context.tag == tag { return true }
            for pending in context.pendingFlushes where pending == tag { return true }
        }
        return false
    }

    /// A free request context; when all are in flight the reader waits (and stops reading:
    /// the transport pushes back on the client).
    private func acquireContext() -> RequestContext<Backend>? {
        stateLock.lock()
        defer { stateLock.unlock() }
        var start: UInt64? = nil
        while freeContexts.isEmpty && !closing {
            if start == nil { start = MemoryClock.nanoseconds() }
            stateLock.wait()
        }
        if closing { return nil }
        let waited = start.map { MemoryClock.nanoseconds() &- $0 }
        if waited != nil { server.arena.recordWait(site: MemorySite.requestSlot, nanoseconds: waited) }
        return contexts[freeContexts.removeLast()]
    }

    /// Returns a context and its buffers after its reply (if any) went out.
    func releaseContext(_ context: RequestContext<Backend>) {
        if let buffer = context.receive {
            context.receive = nil
            server.arena.release(buffer, from: memoryWaiter)
        }
        if context.attachedDescriptor >= 0 {
            // Sent with the reply, or the reply never went out: the server's copy goes.
            Glibc.close(context.attachedDescriptor)
            context.attachedDescriptor = -1
        }
        if let buffer = context.reply {
            context.reply = nil
            let parked = context.replyInParkingReserve
            context.replyInParkingReserve = false
            server.arena.release(buffer, returningParkingBuffer: parked, from: memoryWaiter)
            if parked { stateLock.withLock { parkedInReserve -= 1 } }
        }
        context.frameLength = 0
        stateLock.withLock {
            freeContexts.append(context.index)
            stateLock.broadcast()
        }
        server.dispatchDeferredGrants()
    }

    func closeForProtocolViolation(_ reason: String) {
        logger.warning("closing connection: \(reason)", metadata: ["peer": "\(peer)"])
        shutdownSocket(Int32(SHUT_RDWR))
    }

    /// shutdown(2) of this session's socket, if it is still open. Every thread but the reader
    /// goes through here: once the reader has closed the socket its number may already belong
    /// to another connection (of this server, or of another server in the same process), which
    /// a late shutdown (server shutdown's snapshot, a writer giving up) would cut.
    func shutdownSocket(_ how: Int32) {
        stateLock.withLock { shutdownSocketLocked(how) }
    }

    func shutdownSocketLocked(_ how: Int32) {
        if socketOpen { _ = shutdown(fd, how) }
    }

    // MARK: Shutdown

    /// Stops reading (server shutdown): the reader sees end of stream, or stops waiting for a
    /// free context, and drains.
    func stopReading() {
        stateLock.withLock {
            shutdownSocketLocked(Int32(SHUT_RD))
            closing = true
            stateLock.broadcast()
        }
        server.arena.cancel(memoryWaiter)
    }

    /// Signals every worker serving this connection, so a system call blocked on the outside
    /// world (a FIFO, a socket) returns EINTR. No SA_RESTART on the handler.
    func interruptInFlight() {
        stateLock.withLock { signalWorkersLocked() }
    }

    /// Signals the worker of every request in flight (state lock held).
    private func signalWorkersLocked() {
        for context in contexts where context.inFlight {
            if let thread = context.worker { _ = ninep_pthread_kill(thread, ninep_interrupt_signal()) }
        }
    }

    /// After the stream ended: wait for requests in flight (interrupting blocked system
    /// calls), then drop every fid and close the socket.
    private func shutDownAfterReading() {
        stateLock.lock()
        closing = true
        stateLock.broadcast()
        var rounds = 0
        while inFlightCount > 0 {
            if rounds % 10 == 0 {
                stateLock.unlock()
                abortWaitingForClose()
                stateLock.lock()
                if inFlightCount == 0 { break }
            }
            // A worker blocked in a system call (a FIFO open) is interrupted with a signal
            // without SA_RESTART; repeat in case the signal landed just before the call.
            signalWorkersLocked()
            if rounds == 40 {
                // Two seconds on: a worker may be stuck sending to a peer that stopped reading.
                shutdownSocketLocked(Int32(SHUT_RDWR))
            }
            stateLock.wait(milliseconds: 50)
            rounds += 1
        }
        withdrawDeferredWaiterLocked()  // nothing waits for memory any more
        stateLock.unlock()
        waitForOutboxToDrain()
        fids.clunkAll()
        stateLock.withLock {
            socketOpen = false
            Glibc.close(fd)
        }
    }
}
