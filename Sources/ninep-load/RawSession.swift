import Glibc
import NinePTransport
import NinePWire

/// One 9P connection driven frame by frame: requests go out with the tags this session picks
/// (cyclic, skipping tags in flight and NOTAG), and `wait(tag)` returns that tag's reply while
/// keeping replies to other tags for their own wait. Not thread-safe: one thread at a time
/// (callers that share one hold it in a Mutex).
final class RawSession {
    let fd: Int32
    let timeout: Double
    /// The negotiated msize once Tversion has been answered; the asked one before.
    private(set) var msize: UInt32
    private var nextTag: UInt16 = 0
    /// Requests sent and not answered yet: tag -> request type.
    private(set) var inFlight: [UInt16: MessageType] = [:]
    /// Replies that arrived while the caller waited for another tag.
    private var arrived: [UInt16: Reply] = [:]
    /// Sized to the msize asked for: the server may only lower it.
    private let sendBuffer: UnsafeMutableRawBufferPointer
    private let receiveBuffer: UnsafeMutableRawBufferPointer
    private var closed = false

    init(fd: Int32, msize: UInt32, timeout: Double) {
        self.fd = fd
        self.msize = msize
        self.timeout = timeout
        sendBuffer = .allocate(byteCount: Int(msize), alignment: 16)
        receiveBuffer = .allocate(byteCount: Int(msize), alignment: 16)
    }

    deinit {
        close()
        sendBuffer.deallocate()
        receiveBuffer.deallocate()
    }

    /// Connects and, unless `version` is false, negotiates 9P2000.L at `msize`.
    static func connect(_ endpoint: Endpoint, msize: UInt32, timeout: Double, version: Bool = true) throws -> RawSession {
        let session = RawSession(fd: try endpoint.connect(timeout: timeout), msize: msize, timeout: timeout)
        if version { try session.version() }
        return session
    }

    /// After Rversion: frames are checked against the server's msize from now on.
    func setNegotiated(msize: UInt32) { self.msize = msize }

    func close() {
        if !closed {
            closed = true
            Glibc.close(fd)
        }
    }

    // MARK: tags and frames

    /// A free tag, now counted in flight for a request of `type`.
    func register(_ type: MessageType, tag chosen: UInt16? = nil) throws -> UInt16 {
        if let chosen {
            inFlight[chosen] = type
            return chosen
        }
        for _ in 0..<0x10000 {
            let tag = nextTag
            nextTag = nextTag &+ 1 == NineP.noTag ? 0 : nextTag &+ 1
            if inFlight[tag] == nil && arrived[tag] == nil {
                inFlight[tag] = type
                return tag
            }
        }
        throw LoadError.protocolError("all 65535 tags in flight")
    }

    /// The frame of `request` with `tag` (not sent, not registered): for callers that send
    /// frames themselves.
    func encode(_ request: TRequest, tag: UInt16) throws -> [UInt8] {
        let length = try encodeIntoSendBuffer(request, tag: tag)
        return Array(UnsafeRawBufferPointer(rebasing: sendBuffer[0..<length]))
    }

    private func encodeIntoSendBuffer(_ request: TRequest, tag: UInt16) throws -> Int {
        var writer = WireWriter(UnsafeMutableRawBufferPointer(rebasing: sendBuffer[0..<Int(msize)]))
        do {
            return try request.encode(tag: tag, into: &writer)
        } catch WireError.noRoom {
            throw LoadError.protocolError("\(request.type.displayName) exceeds msize \(msize)")
        }
    }

    /// Sends `request` and returns its tag (the one given, else a free one).
    @discardableResult
    func send(_ request: TRequest, tag chosen: UInt16? = nil) throws -> UInt16 {
        let tag = try register(request.type, tag: chosen)
        let length: Int
        do {
            length = try encodeIntoSendBuffer(request, tag: tag)
        } catch {
            inFlight[tag] = nil
            throw error
        }
        try write(UnsafeRawBufferPointer(rebasing: sendBuffer[0..<length]), what: request.type.displayName)
        return tag
    }

    /// Writes bytes already framed (frames from `encode`, with tags from `register`).
    func write(_ bytes: UnsafeRawBufferPointer, what: String) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            if n > 0 {
                done += n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw LoadError.connectionLost("send \(what): the server took nothing for \(Int(timeout)) s")
            } else {
                throw LoadError.connectionLost("send \(what): \(String(cString: strerror(errno)))")
            }
        }
    }

    // MARK: replies

    /// The next reply off the wire (any tag), as a view into the receive buffer that the next
    /// receive overwrites, with the type of the request it answers.
    func receiveFrame() throws -> (header: FrameHeader, request: MessageType, frame: UnsafeRawBufferPointer) {
        let headerBytes = UnsafeMutableRawBufferPointer(rebasing: receiveBuffer[0..<NineP.headerSize])
        try readExactly(headerBytes)
        let header: FrameHeader
        do {
            header = try FrameHeader.decode(UnsafeRawBufferPointer(headerBytes), msize: msize)
        } catch {
            throw LoadError.protocolError("reply header outside [7, msize \(msize)]: \(error)")
        }
        let size = Int(header.size)
        if size > NineP.headerSize {
            try readExactly(UnsafeMutableRawBufferPointer(rebasing: receiveBuffer[NineP.headerSize..<size]))
        }
        guard let request = inFlight.removeValue(forKey: header.tag) else {
            throw LoadError.protocolError("reply type \(header.type) with tag \(header.tag) that is not in flight")
        }
        let isError = header.type == MessageType.rlerror.rawValue || header.type == MessageType.rerror.rawValue
        guard isError || header.type == request.rawValue + 1 else {
            throw LoadError.protocolError("reply type \(header.type) to \(request.displayName) (tag \(header.tag))")
        }
        return (header, request, UnsafeRawBufferPointer(rebasing: receiveBuffer[0..<size]))
    }

    /// The next reply off the wire, copied.
    func receive() throws -> Reply {
        let (header, request, frame) = try receiveFrame()
        return Reply(tag: header.tag, type: header.type, request: request, frame: Bytes.copy(frame))
    }

    /// The reply to `tag`, keeping replies to other tags for their own wait.
    func wait(_ tag: UInt16) throws -> Reply {
        if let reply = arrived.removeValue(forKey: tag) { return reply }
        guard inFlight[tag] != nil else { throw LoadError.protocolError("tag \(tag) is not in flight") }
        while true {
            let reply = try receive()
            if reply.tag == tag { return reply }
            arrived[reply.tag] = reply
        }
    }

    /// Sends every request, then returns their replies in order (Rlerror is not thrown).
    func pipeline(_ requests: [TRequest]) throws -> [Reply] {
        let tags = try requests.map { try send($0) }
        return try tags.map { try wait($0) }
    }

    private func readExactly(_ buffer: UnsafeMutableRawBufferPointer) throws {
        switch SocketIO.readFully(fd, into: buffer) {
        case .complete:
            return
        case .closed:
            throw LoadError.connectionLost("server closed the connection (\(inFlight.count) requests in flight)")
        case .stalled:
            throw LoadError.connectionLost("no reply within \(Int(timeout)) s (\(inFlight.count) requests in flight)")
        }
    }
}

/// One reply frame, copied out of the session's buffer.
struct Reply {
    let tag: UInt16
    let type: UInt8
    let request: MessageType
    let frame: [UInt8]

    /// The errno of an Rlerror (or 9P2000.u Rerror), else nil.
    var errno: UInt32? {
        guard type == MessageType.rlerror.rawValue || type == MessageType.rerror.rawValue else { return nil }
        return try? decoded { response in
            switch response {
            case let .lerror(code): code
            case let .error(_, code): code
            default: 0
            }
        }
    }

    /// `body` on the decoded reply if it is the success reply to its request; throws
    /// LoadError.rlerror for an Rlerror, protocolError for anything else.
    func expect<T>(_ body: (Response) throws -> T) throws -> T {
        if let code = errno { throw LoadError.rlerror(errno: code, request: request) }
        return try decoded(body)
    }

    /// Checks that this is the success reply; throws as `expect`.
    func expectSuccess() throws {
        _ = try expect { _ in () }
    }

    private func decoded<T>(_ body: (Response) throws -> T) throws -> T {
        try frame.withUnsafeBytes { bytes in
            let message: RMessage
            do {
                message = try RMessage.decode(bytes, msize: UInt32.max)
            } catch {
                throw LoadError.protocolError("undecodable reply to \(request.displayName) (tag \(tag)): \(error)")
            }
            return try body(message.response)
        }
    }
}
