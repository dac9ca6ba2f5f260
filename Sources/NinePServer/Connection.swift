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
final class Connection: @unchecked Sendable {
    // @unchecked Sendable: mutable fields are guarded by `stateLock` (contexts' shared fields,
    // `freeContexts`, `closing`, `msize`, `inFlightCount`) or owned by the reader thread
    // (`headerScratch`, `flushReply`); see each field.
    unowned let server: Server
    let fd: Int32
    let peer: String
    let id: Int
    let fids: FidTable
    let stateLock = ConditionLock()
    let writeLock = ConditionLock()
    private(set) var contexts: [RequestContext] = []
    private var freeContexts: [Int] = []
    var inFlightCount = 0
    var closing = false
    var msize: UInt32
    var versionNegotiated = false
    /// Reader-owned scratch.
    private let headerScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 8)
    let flushReply = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)

    init(server: Server, fd: Int32, peer: String, id: Int) {
        self.server = server
        self.fd = fd
        self.peer = peer
        self.id = id
        self.fids = FidTable(limit: server.configuration.maxFidsPerConnection)
        self.msize = server.configuration.maxMessageSize
        let count = server.configuration.maxRequestsPerConnection
        contexts.reserveCapacity(count)
        freeContexts.reserveCapacity(count)
        for index in 0..<count {
            contexts.append(RequestContext(connection: self, index: index))
            freeContexts.append(count - 1 - index)
        }
    }

    deinit {
        headerScratch.deallocate()
        flushReply.deallocate()
    }

    var logger: Logger { server.logger }

    // MARK: Reading and admission

    /// The reader thread's loop: read a frame, admit it, hand it to the workers.
    func readLoop() {
        while let context = readNextRequest() {
            admit(context)
        }
        shutDownAfterReading()
    }

    /// Reads the next request that needs a worker. Tflush is served right here, from the
    /// reader's own buffer, so it never waits for a context or a pool buffer.
    private func readNextRequest() -> RequestContext? {
        while true {
            guard SocketIO.readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: headerScratch[0..<NineP.headerSize])) == .complete else {
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
                sendRlerror(tag: tag, errno: LinuxErrno.EMSGSIZE, scratch: flushReply)
                return nil
            }
            if type == MessageType.tflush.rawValue && size == 9 {
                guard SocketIO.readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: headerScratch[7..<9])) == .complete else {
                    return nil
                }
                let oldtag = headerScratch.loadUnaligned(fromByteOffset: 7, as: UInt16.self).littleEndian
                if !handleFlush(tag: tag, oldtag: oldtag) { return nil }
                continue
            }
            guard let context = acquireContext() else { return nil }
            let offset = RequestContext.alignedFrameOffset(type: type)
            if Int(size) + offset > context.smallReceive.count {
                guard let large = server.largeBuffers.acquire() else {
                    releaseContext(context)
                    return nil
                }
                context.largeReceive = large
            }
            let buffer = context.receiveBuffer
            UnsafeMutableRawBufferPointer(rebasing: buffer[offset...])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: headerScratch[0..<NineP.headerSize]))
            let body = UnsafeMutableRawBufferPointer(rebasing: buffer[(offset + NineP.headerSize)..<(offset + Int(size))])
            guard SocketIO.readFully(fd, into: body) == .complete else {
                releaseContext(context)
                return nil
            }
            context.frameLength = Int(size)
            context.frameOffset = offset
            return context
        }
    }

    /// Decodes, checks the tag, serves Tversion inline, and queues everything else.
    private func admit(_ context: RequestContext) {
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
                sendRlerror(tag: tag, errno: error.errno, scratch: context.smallReply)
            }
            releaseContext(context)
            return
        }
        context.message = message
        if case let .version(clientSize, version) = message.request {
            handleVersion(context, clientSize: clientSize, version: version)
            releaseContext(context)
            return
        }
        // Reserve the reply buffer now, so the request holds all it needs before it starts.
        if case .read = message.request {
            context.replyOffset = RequestContext.alignmentSlack - NineP.readReplyOverhead
        } else {
            context.replyOffset = 0
        }
        // A read of a FIFO or socket may wait on the outside world: it must not hold a large
        // buffer meanwhile, so it reads what fits in its small one (a short read is legal).
        var streamingRead = false
        if case let .read(fid, _, _) = message.request { streamingRead = fids.isStreaming(fid) }
        if !streamingRead, let needed = Self.replySizeNeeded(message.request), needed + context.replyOffset > context.smallReply.count {
            guard let large = server.largeBuffers.acquire() else {
                releaseContext(context)
                return
            }
            context.largeReply = large
        }
        let admitted: Bool = stateLock.withLock {
            if closing { return false }
            if tagInUseLocked(message.tag) { return false }
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
        server.queue.enqueue(context)
    }

    /// The reply size a request may need beyond a small buffer.
    static func replySizeNeeded(_ request: Request) -> Int? {
        switch request {
        case let .read(_, _, count), let .readdir(_, _, count): return Int(count) + NineP.readReplyOverhead
        default: return nil
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

    private func acquireContext() -> RequestContext? {
        stateLock.lock()
        defer { stateLock.unlock() }
        while freeContexts.isEmpty && !closing {
            stateLock.wait()
        }
        if closing { return nil }
        return contexts[freeContexts.removeLast()]
    }

    /// Returns a context and its large buffers after its reply (if any) went out.
    func releaseContext(_ context: RequestContext) {
        if let large = context.largeReceive {
            server.largeBuffers.release(large)
            context.largeReceive = nil
        }
        if let large = context.largeReply {
            server.largeBuffers.release(large)
            context.largeReply = nil
        }
        context.frameLength = 0
        stateLock.withLock {
            freeContexts.append(context.index)
            stateLock.broadcast()
        }
    }

    // MARK: Sending

    /// Writes a reply under the write lock. A failed write means the peer is gone: the reader
    /// notices on its next read.
    func send(_ bytes: UnsafeRawBufferPointer) {
        writeLock.withLock { _ = SocketIO.writeFully(fd, bytes) }
    }

    /// Encodes an Rlerror into `scratch` and sends it.
    private func sendRlerror(tag: UInt16, errno: UInt32, scratch: UnsafeMutableRawBufferPointer) {
        var writer = WireWriter(scratch)
        guard let length = try? writer.rlerror(tag: tag, errno: errno) else { return }
        send(UnsafeRawBufferPointer(rebasing: scratch[0..<length]))
    }

    func closeForProtocolViolation(_ reason: String) {
        logger.warning("closing connection: \(reason)", metadata: ["peer": "\(peer)"])
        _ = shutdown(fd, Int32(SHUT_RDWR))
    }

    // MARK: Shutdown

    /// Stops reading (server shutdown): the reader sees end of stream, or stops waiting for a
    /// free context, and drains.
    func stopReading() {
        _ = shutdown(fd, Int32(SHUT_RD))
        stateLock.withLock {
            closing = true
            stateLock.broadcast()
        }
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
                _ = shutdown(fd, Int32(SHUT_RDWR))
            }
            stateLock.wait(milliseconds: 50)
            rounds += 1
        }
        stateLock.unlock()
        fids.clunkAll()
        Glibc.close(fd)
        server.connectionClosed(self)
    }
}
