import Glibc
import NinePTransport
import NinePWire

/// One frame or more waiting for the socket: a request's reply and the Rflushes that follow it,
/// or a lone Rflush or Rlerror.
struct OutputItem<Backend: FileSystemBackend> {
    /// The request whose reply buffer holds the reply and whose `flushesToSend` lists the
    /// Rflushes after it; given back once everything is written. Nil for a lone frame.
    var context: RequestContext<Backend>?
    /// Reply bytes at the start of the context's reply region (0 for none).
    var length = 0
    /// A lone frame's tag, and Rlerror's errno (0: the lone frame is an Rflush).
    var tag: UInt16 = 0
    var errno: UInt32 = 0

    static var none: OutputItem { OutputItem() }
    static var rflushBytes: Int { NineP.headerSize }
    static var rlerrorBytes: Int { NineP.headerSize + 4 }

    static func reply(_ context: RequestContext<Backend>, length: Int) -> OutputItem<Backend> {
        OutputItem(context: context, length: length)
    }
    static func rflush(tag: UInt16) -> OutputItem<Backend> { OutputItem(tag: tag) }
    static func rlerror(tag: UInt16, errno: UInt32) -> OutputItem<Backend> { OutputItem(tag: tag, errno: errno) }

    /// Bytes of the small frames after the reply (Rflushes), or of the lone frame.
    var frameBytes: Int {
        if let context { return context.flushesToSend.count * Self.rflushBytes }
        return errno == 0 ? Self.rflushBytes : Self.rlerrorBytes
    }
    var totalBytes: Int { length + frameBytes }
}

/// Writing replies. A reply goes out at once, without waiting, when nothing is queued before it
/// and the socket takes it whole: the common case, on the thread that made it. Otherwise it
/// joins the connection's outbox, which the connection's own writer thread empties in order,
/// blocking as long as the client does not read. No worker and no reader ever waits for a
/// client to read: a client that stops reading (stopped with ^Z, hung) holds its own writer
/// thread and the buffers of its replies, and the other connections go on. Frames never
/// interleave: the outbox is first in, first out, and a frame begun without waiting is its head.
extension ServerConnection {
    /// Queues or writes `item` (write lock held). Returns true when the item is done (written
    /// whole, or the peer is gone): the caller then finishes it after unlocking.
    func deliverLocked(_ item: OutputItem<Backend>) -> Bool {
        if item.totalBytes == 0 { return true }  // a silent request with no Rflush
        if outboxCount == 0 {
            let written = write(item, from: 0, waiting: false)
            if written < 0 || written == item.totalBytes { return true }
            headSent = written
        }
        // A reply always has room (its context's place). Lone frames have `loneFrames`
        // places; when they are taken the reader waits, which is push-back on a client that
        // sends Tflushes and reads nothing, and never holds up a worker.
        if item.context == nil {
            while outboxLone == Self.loneFrames { writeLock.wait() }
            outboxLone += 1
        }
        outbox[(outboxHead + outboxCount) % outbox.count] = item
        outboxCount += 1
        writeLock.broadcast()
        return false
    }

    /// Queues or writes `item` and finishes it if it is done.
    func deliver(_ item: OutputItem<Backend>) {
        writeLock.lock()
        let done = deliverLocked(item)
        writeLock.unlock()
        if done { finish(item) }
    }

    /// After an item's bytes are out: its context goes back to the free list.
    func finish(_ item: OutputItem<Backend>) {
        guard let context = item.context else { return }
        context.flushesToSend.removeAll(keepingCapacity: true)
        releaseContext(context)
    }

    /// The writer thread of this connection slot: writes the outbox in order until told to
    /// stop (server shutdown, or the end of a connection beyond the table) with nothing left.
    /// It waits for the socket with the client timeout: a peer that takes no byte of its
    /// replies for that long is disconnected (`disconnectStalled`), which ends its session.
    @_specialize(exported: false, kind: full, where Backend == PosixBackend)  // see Worker.run
    func writerThread() {
        writeLock.lock()
        while true {
            while outboxCount == 0 && !writerStopping { writeLock.wait() }
            if outboxCount == 0 { break }
            let item = outbox[outboxHead]
            let from = headSent
            writeLock.unlock()
            // A blocking write with the socket's send timeout (the client timeout, set when
            // the session starts): it ends early only when the peer took nothing for that long.
            if write(item, from: from, waiting: true) == Self.stalled {
                disconnectStalled(unwritten: item.totalBytes - from)
            }
            writeLock.lock()
            outbox[outboxHead] = .none
            outboxHead = (outboxHead + 1) % outbox.count
            outboxCount -= 1
            if item.context == nil { outboxLone -= 1 }
            headSent = 0
            writeLock.broadcast()
            writeLock.unlock()
            finish(item)
            writeLock.lock()
        }
        writerStopping = false
        writeLock.unlock()
    }

    /// The peer took none of its replies for the client timeout while they waited: it is
    /// stopped, hung or gone. Shutting the socket down ends its session (the reader sees the
    /// end, every fid is clunked) and makes the remaining writes fail at once.
    private func disconnectStalled(unwritten: Int) {
        shutdownSocket(Int32(SHUT_RDWR))
        let seconds = server.configuration.clientTimeoutMilliseconds / 1000
        server.logWhenMemoryAllows {
            logger.warning("disconnecting client: it read none of its replies for \(seconds) s (--client-timeout); \(unwritten) bytes were waiting", metadata: ["peer": "\(peer)", "connection": "\(id)"])
        }
    }

    /// Ends the writer thread once the outbox is empty.
    func stopWriter() {
        writeLock.withLock {
            writerStopping = true
            writeLock.broadcast()
        }
    }

    /// Waits until the outbox is empty (the session is ending). The writer gives up on a peer
    /// that takes nothing for the client timeout; without one, or when the server stops, the
    /// socket is shut down after two seconds, so writes to a peer that stopped reading fail and the outbox drains.
    func waitForOutboxToDrain() {
        writeLock.lock()
        var rounds = 0
        while outboxCount > 0 {
            if rounds == 40 && (server.configuration.clientTimeoutMilliseconds == 0 || server.isStopping) { shutdownSocket(Int32(SHUT_RDWR)) }
            writeLock.wait(milliseconds: 50)
            rounds += 1
        }
        writeLock.unlock()
    }

    /// Writes `item` from byte `from` on: what the socket takes now, or all of it. Returns the
    /// item's bytes written so far, -1 when the peer is gone, or `stalled`.
    private func write(_ item: OutputItem<Backend>, from: Int, waiting: Bool) -> Int {
        var position = from
        if let context = item.context, position < item.length {
            let bytes = UnsafeRawBufferPointer(rebasing: context.replyRegion[position..<item.length])
            let n = position == 0 && context.attachedDescriptor >= 0
                ? writeBytes(bytes, attaching: context.attachedDescriptor, waiting: waiting)
                : writeBytes(bytes, waiting: waiting)
            if n < 0 { return n }
            position += n
            if position < item.length { return position }
        }
        let frameBytes = item.frameBytes
        if frameBytes == 0 { return position }
        // At most maxPendingFlushes Rflushes, or one Rlerror: on the stack.
        return withUnsafeTemporaryAllocation(byteCount: RequestContext<Backend>.maxPendingFlushes * OutputItem<Backend>.rflushBytes + OutputItem<Backend>.rlerrorBytes, alignment: 8) { scratch in
            var writer = WireWriter(scratch)
            if let context = item.context {
                for tag in context.flushesToSend { _ = try? Response.flush.encode(tag: tag, into: &writer) }
            } else if item.errno == 0 {
                _ = try? Response.flush.encode(tag: item.tag, into: &writer)
            } else {
                _ = try? writer.rlerror(tag: item.tag, errno: item.errno)
            }
            let start = position - item.length
            let n = writeBytes(UnsafeRawBufferPointer(rebasing: scratch[start..<frameBytes]), waiting: waiting)
            return n < 0 ? n : position + n
        }
    }

    /// What `write` returns when the peer took nothing for the client timeout.
    static var stalled: Int { -2 }

    /// The first bytes of a reply that carries a descriptor (localio): it goes with them.
    private func writeBytes(_ bytes: UnsafeRawBufferPointer, attaching descriptor: Int32, waiting: Bool) -> Int {
        guard waiting else { return SocketIO.writeWithoutWaiting(fd, bytes, attaching: descriptor) }
        switch SocketIO.writeFully(fd, bytes, attaching: descriptor) {
        case .complete: return bytes.count
        case .closed: return -1
        case .stalled: return Self.stalled
        }
    }

    private func writeBytes(_ bytes: UnsafeRawBufferPointer, waiting: Bool) -> Int {
        guard waiting else { return SocketIO.writeWithoutWaiting(fd, bytes) }
        switch SocketIO.writeFully(fd, bytes) {
        case .complete: return bytes.count
        case .closed: return -1
        case .stalled: return Self.stalled
        }
    }
}
