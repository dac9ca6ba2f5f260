import NinePMemory
import CNinePShims
import Glibc
import NinePTransport
import NinePWire
import Synchronization

/// One 9P connection shared by many tasks: callers encode into their slot's buffer and hand the
/// frame to the `FrameSender` (written at once when the socket takes it, else by the sender
/// thread, in order, so a caller never blocks on the socket); one reader thread receives
/// every reply straight into the buffer of the slot that holds its tag and wakes that caller;
/// one housekeeper thread sends Tflush for cancelled and timed-out calls, ends the flush grace
/// and clunks fids that callers left behind.
final class ClientConnection: Sendable {
    let fd: Int32
    let msize: UInt32
    let requestSlots: Int
    let state: AdaptiveMutex<ClientConnectionState>
    /// An eventfd that wakes the housekeeper.
    private let wakeFD: Int32
    /// Set once, right after init (the sender's callbacks need the connection).
    private let senderBox = AdaptiveMutex<FrameSender?>(nil)
    /// localio (docs/LOCALIO.md): the session negotiated it and proved locality, so the reader
    /// receives with recvmsg and files Rlocalgrant's descriptors in `grants`.
    let localIO: Bool
    let grants = GrantedDescriptors()
    /// Callers bound to `CallerReads.$allowed` may read the socket (see `CallerReads`).
    let callersRead: Bool
    /// An eventfd that wakes the reader thread when it is parked (callers may read).
    let readerWakeFD: Int32
    /// The frame header and discard buffers of whoever holds the socket (`baton`).
    let readBuffers: ReadBuffers
    /// Calls whose caller read the socket itself (for tests and diagnostics).
    let callsLed = Atomic<Int>(0)

    private init(fd: Int32, msize: UInt32, localIO: Bool, configuration: ClientConfiguration) {
        self.fd = fd
        self.msize = msize
        self.localIO = localIO
        requestSlots = max(1, min(configuration.maxInFlight, 4096))
        state = AdaptiveMutex(ClientConnectionState(requestSlots: requestSlots, msize: msize, grace: configuration.flushGrace))
        if configuration.preallocateBuffers { state.withLock { $0.buffers.preallocateAll() } }
        wakeFD = ninep_eventfd()
        // localio's descriptors arrive with the reader thread's recvmsg: no callers reading then.
        callersRead = configuration.callersRead && !localIO
        readerWakeFD = ninep_eventfd()
        readBuffers = ReadBuffers()
        if callersRead { state.withLock { $0.baton = .free } }
    }

    deinit {
        Glibc.close(fd)
        Glibc.close(wakeFD)
        Glibc.close(readerWakeFD)
        readBuffers.deallocate()
    }

    /// Connects, negotiates the version and msize, and starts the reader and housekeeper.
    /// `watch` (see `CancellableOpen`) learns which socket to shut down when the caller is
    /// cancelled while this thread blocks on it.
    static func open(_ configuration: ClientConfiguration, connectedSocket: Int32? = nil, watch: CancellableOpen? = nil) throws(NinePError) -> ClientConnection {
        // Connecting and Tversion block this thread: bounded by the call timeout (30 s if none).
        let limit = configuration.callTimeout ?? .seconds(30)
        let fd: Int32
        if let connectedSocket { fd = connectedSocket } else { fd = try SocketConnector.connect(to: configuration.address, timeout: limit) }
        guard watch?.began(fd) ?? true else {
            Glibc.close(fd)
            throw NinePError.connectionLost(.connect).at(configuration.address.description)
        }
        let msize: UInt32
        let localIO: Bool
        do {
            setSocketTimeouts(fd, limit)
            (msize, localIO) = try LocalIONegotiation.negotiate(fd: fd, configuration: configuration)
            setSocketTimeouts(fd, .zero)
        } catch {
            watch?.ended()
            Glibc.close(fd)
            throw error.at(configuration.address.description)
        }
        watch?.ended()
        let connection = ClientConnection(fd: fd, msize: msize, localIO: localIO, configuration: configuration)
        let sender = FrameSender(fd: fd, capacity: 2 * connection.requestSlots) { [weak connection] frame in
            connection?.frameSent(frame)
        } onFailure: { [weak connection] in
            connection?.shutdown()
        }
        connection.senderBox.withLock { $0 = sender }
        DaemonThread.start(name: "9p-reader") { connection.readReplies() }
        DaemonThread.start(name: "9p-housekeeper") { connection.keepHouse() }
        return connection
    }

    /// SO_RCVTIMEO and SO_SNDTIMEO (zero: none).
    private static func setSocketTimeouts(_ fd: Int32, _ limit: Duration) {
        let (seconds, attoseconds) = limit.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Tversion/Rversion (tag NOTAG), before any other traffic: the msize both sides accept.
    static func negotiateVersion(fd: Int32, msize: UInt32) throws(NinePError) -> UInt32 {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 16)
        defer { buffer.deallocate() }
        var writer = WireWriter(buffer)
        guard let length = try? Request.version(msize: msize, version: ByteView(static: "9P2000.L")).encode(tag: NineP.noTag, into: &writer),
              SocketIO.writeFully(fd, UnsafeRawBufferPointer(rebasing: buffer[0..<length])) == .complete
        else { throw .connectionLost(.version) }
        let header = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<NineP.headerSize])
        // .stalled: nothing within the receive timeout (SO_RCVTIMEO, the call timeout): a
        // server that accepted and never answered timed out, it did not hang up.
        let outcome = SocketIO.readFully(fd, into: header)
        guard outcome == .complete else { throw outcome == .stalled ? .timedOut(.version) : .connectionLost(.version) }
        guard let frame = try? FrameHeader.decode(UnsafeRawBufferPointer(header), msize: UInt32(buffer.count)) else {
            throw .protocolViolation(.version)
        }
        let body = UnsafeMutableRawBufferPointer(rebasing: buffer[NineP.headerSize..<Int(frame.size)])
        let bodyOutcome = SocketIO.readFully(fd, into: body)
        guard bodyOutcome == .complete else { throw bodyOutcome == .stalled ? .timedOut(.version) : .connectionLost(.version) }
        let message: RMessage
        do {
            message = try RMessage.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<Int(frame.size)]), msize: UInt32(buffer.count))
        } catch {
            throw .protocolViolation(.version)
        }
        switch message.response {
        case let .version(offered, version):
            guard version.equals("9P2000.L") else { throw NinePError(.protocolViolation, errno: EPROTONOSUPPORT, operation: .version) }
            guard offered >= 4096, offered <= msize else { throw .protocolViolation(.version) }
            return offered
        case .lerror, .error:
            throw NinePError.reported(by: message.response, .version) ?? .protocolViolation(.version)
        default:
            throw .protocolViolation(.version)
        }
    }

    // MARK: Sending

    /// Puts a slot's frame on the wire without blocking (see `FrameSender`); false when the
    /// connection is gone.
    func send(_ frame: SlotFrame) -> Bool {
        guard let sender = senderBox.withLock({ $0 }) else { return false }
        switch sender.submit(frame) {
        case .sent:
            frameSent(frame)
            return true
        case .queued:
            return true
        case .failed:
            return false
        }
    }

    /// A request frame is wholly on the wire: a flush may now follow it.
    func frameSent(_ frame: SlotFrame) {
        guard frame.slot < requestSlots else { return }
        if state.withLock({ $0.markSent(frame.slot, tag: frame.tag) }) { pokeHousekeeper() }
    }

    /// Wakes the parked reader thread (it drains the eventfd, then looks at the `baton`).
    func wakeReader() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(readerWakeFD, $0.baseAddress, 8) }
    }

    /// Wakes the reader thread if a frame sent in the background found nobody reading.
    func wakeReaderIfWanted() {
        guard callersRead else { return }
        let wanted = state.withLock { state in
            defer { state.wakeReaderWanted = false }
            return state.wakeReaderWanted
        }
        if wanted { wakeReader() }
    }

    /// Wakes the housekeeper (it drains the eventfd before it looks at the state).
    func pokeHousekeeper() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(wakeFD, $0.baseAddress, 8) }
    }

    /// Closes the connection: every waiting call fails with a lost connection.
    func shutdown() {
        let wasOpen = state.withLock { state in
            defer { state.close() }
            return !state.closed
        }
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
        senderBox.withLock { $0 }?.close()
        pokeHousekeeper()
        wakeReader()
        if wasOpen, let lost = lostHandler.withLock({ $0 }) { lost() }
    }

    /// Called once when the connection closes, whatever closed it (the `Reconnector`'s hook).
    let lostHandler = AdaptiveMutex<(@Sendable () -> Void)?>(nil)

    var isClosed: Bool { state.withLock { $0.closed } }

    // MARK: Fids

    func allocateFid() -> UInt32 { state.withLock { $0.fids.allocate() } }

    func releaseFid(_ fid: UInt32) { state.withLock { $0.fids.release(fid) } }

    /// Clunks `fid` in the background (for handles dropped without close, and for cleanup on
    /// paths where the caller cannot wait, e.g. after its task was cancelled).
    func clunkLater(_ fid: UInt32) {
        let closed = state.withLock { state in
            if !state.closed { state.pendingClunks.append(fid) }
            return state.closed
        }
        if !closed { pokeHousekeeper() }
    }

    /// Sends Tclunk of `fid` now from the calling thread, without waiting for Rclunk (the
    /// reader settles it and gives the fid number back): no wake-up of the housekeeper, none
    /// of the caller. When every request slot is taken, the housekeeper sends it later
    /// (`clunkLater`).
    func clunkWithoutWaiting(_ fid: UInt32) {
        guard let frame = state.withLock({ $0.backgroundClunk(of: fid) }) else {
            clunkLater(fid)
            return
        }
        wakeReaderIfWanted()
        if !send(frame) { shutdown() }
    }

    /// `clunkLater` only when the queue has room without growing (no allocation); false when
    /// it has none (the housekeeper lags behind), and then the caller clunks the fid itself.
    func clunkLaterWithoutGrowing(_ fid: UInt32) -> Bool {
        let queued = state.withLock { state in
            guard !state.closed, state.pendingClunks.count < state.pendingClunks.capacity else { return false }
            state.pendingClunks.append(fid)
            return true
        }
        if queued { pokeHousekeeper() }
        return queued
    }

    // MARK: Reader thread

    /// Receives replies until the connection ends, each straight into its slot's buffer. When
    /// callers may read, it reads only while it holds the socket (`baton`), and parks on its
    /// eventfd when no reply is awaited or a caller reads.
    private func readReplies() {
        // localio: descriptors arrive with frames' bytes; without it, plain recv as always.
        let inbox = localIO ? DescriptorInbox() : nil
        while true {
            if callersRead {
                var drained: UInt64 = 0
                var wake = pollfd(fd: readerWakeFD, events: Int16(POLLIN), revents: 0)
                while true {
                    // Drained before looking: a wake-up that comes after the look is not lost.
                    _ = Glibc.read(readerWakeFD, &drained, 8)
                    let (mine, closed) = state.withLock { ($0.baton == .reader, $0.closed) }
                    if closed {
                        shutdown()
                        return
                    }
                    if mine { break }
                    wake.revents = 0
                    _ = poll(&wake, 1, -1)
                }
            }
            guard receiveFrame(inbox) else { break }
            if callersRead { _ = state.withLock { $0.releaseReading(from: .reader) } }
        }
        shutdown()
    }

    /// Reads one frame into the slot that awaits it (or discards it) and wakes its caller.
    /// False when the connection ended. Only the holder of the socket calls it.
    func receiveFrame(_ inbox: DescriptorInbox?) -> Bool {
        let header = readBuffers.header
        let discard = readBuffers.discard
        guard receive(into: header, inbox) == .complete else { return false }
        guard let frame = try? FrameHeader.decode(UnsafeRawBufferPointer(header), msize: msize) else { return false }
        let size = Int(frame.size)
        let destination = state.withLock { SlotBuffer($0.destination(for: frame.tag, size: size)) }
        if let bytes = destination.bytes {
            bytes.copyMemory(from: UnsafeRawBufferPointer(header))
            let body = UnsafeMutableRawBufferPointer(rebasing: bytes[NineP.headerSize..<size])
            guard receive(into: body, inbox) == .complete else { return false }
            if let inbox { grants.frameRead(type: frame.type, tag: frame.tag, inbox: inbox, frame: UnsafeRawBufferPointer(rebasing: bytes[0..<size])) }
            let (poke, waiting) = state.withLock { $0.deliver(tag: frame.tag, length: size) }
            // Outside the lock (see `deliver`): the caller's task may be being cancelled.
            waiting?.resume(returning: .reply(length: size))
            if poke { pokeHousekeeper() }
        } else {
            var left = size - NineP.headerSize
            while left > 0 {
                let chunk = min(left, discard.count)
                guard receive(into: UnsafeMutableRawBufferPointer(rebasing: discard[0..<chunk]), inbox) == .complete else { return false }
                left -= chunk
            }
            if let inbox { inbox.closeAll() }  // a reply nobody waits for keeps nothing
        }
        return true
    }

    /// One whole read for the reader thread: recvmsg collecting descriptors under localio.
    @inline(__always)
    private func receive(into buffer: UnsafeMutableRawBufferPointer, _ inbox: DescriptorInbox?) -> SocketIO.Outcome {
        if let inbox { return SocketIO.readFully(fd, into: buffer, collecting: inbox) }
        return SocketIO.readFully(fd, into: buffer)
    }

    // MARK: Housekeeper thread

    /// Sends flushes and background clunks, and ends deadlines and flush graces, until closed.
    private func keepHouse() {
        var wake = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
        var drained: UInt64 = 0
        // At most one flush per request slot and one clunk per free request slot at a time.
        var frames: [SlotFrame] = []
        frames.reserveCapacity(2 * requestSlots)
        while true {
            _ = Glibc.read(wakeFD, &drained, 8)
            let now = ContinuousClock.now
            frames.removeAll(keepingCapacity: true)
            let (open, nextLook) = state.withLock { state in state.closed ? (false, nil) : (true, state.chores(now: now, frames: &frames)) }
            guard open else { return }
            wakeReaderIfWanted()
            // Indexed, not iterated: a debug build's generic iterator allocates.
            for index in 0..<frames.count {
                guard send(frames[index]) else {
                    shutdown()
                    return
                }
            }
            var timeout: Int32 = -1
            if let next = nextLook {
                let (seconds, attoseconds) = now.duration(to: next).components
                timeout = Int32(clamping: max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1))
            }
            _ = poll(&wake, 1, timeout)
        }
    }
}

/// The frame header and discard buffers of whoever reads the socket. `@unchecked Sendable`:
/// only the holder of the connection's `baton` (one thread at a time, handed over under the
/// state lock) touches them; they live as long as the connection.
struct ReadBuffers: @unchecked Sendable {
    let header = UnsafeMutableRawBufferPointer.allocate(byteCount: NineP.headerSize, alignment: 8)
    let discard = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)

    func deallocate() {
        header.deallocate()
        discard.deallocate()
    }
}

/// A slot buffer handed out of the state lock. `@unchecked Sendable`: the slot it belongs to
/// is reserved for the holder (the caller that owns the slot, or the reader thread between
/// `destination` and `deliver`, while the tag is awaited), and the memory lives as long as
/// the connection.
struct SlotBuffer: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer?
    init(_ bytes: UnsafeMutableRawBufferPointer?) { self.bytes = bytes }
}
