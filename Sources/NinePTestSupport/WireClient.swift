import Glibc
import NinePTransport
import NinePWire
import Testing

/// What a test sees when it waits for a reply.
public enum Incoming {
    case message(RMessage)
    /// The server closed (or reset) the connection.
    case closed
    /// Nothing arrived within the receive timeout (SO_RCVTIMEO).
    case timeout
}

/// Why a client call did not give the expected reply.
public enum WireClientError: Error, Equatable, CustomStringConvertible {
    case lerror(UInt32)
    case unexpected(String)
    case closed
    case timeout

    public var description: String {
        switch self {
        case let .lerror(code): "Rlerror(\(code))"
        case let .unexpected(what): "unexpected reply: \(what)"
        case .closed: "connection closed by the server"
        case .timeout: "no reply within the receive timeout"
        }
    }
}

/// The errno of the Rlerror that `body` failed with; nil when it succeeded. Any other failure
/// (a closed connection, a timeout, a wrong reply) is recorded as an issue.
public func errnoOf<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> UInt32? {
    do {
        _ = try body()
        return nil
    } catch let WireClientError.lerror(code) {
        return code
    } catch {
        Issue.record("expected Rlerror, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A small blocking 9P client for tests, on a socketpair, TCP or a unix socket: frames are encoded with NinePWire's
/// `Request.encode` and replies decoded with `RMessage.decode`. Every receive is bounded by
/// SO_RCVTIMEO, so no test can hang on a server that does not answer.
///
/// The client owns the memory behind the `ByteView`s it hands out (strings it encodes and the
/// frames it receives), so decoded replies stay valid for the client's lifetime.
public final class WireClient {
    public private(set) var fd: Int32
    private var blocks: [UnsafeMutableRawBufferPointer] = []
    fileprivate let sendBuffer: UnsafeMutableRawBufferPointer
    /// The reused frame of `receiveTransient()` (allocated on first use).
    fileprivate var transientFrame = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var nextTag: UInt16 = 1
    public let timeoutSeconds: Int
    /// Descriptors that came with replies (localio's Rversion and Rlocalgrant), oldest first.
    public let descriptors = DescriptorInbox(capacity: 8)

    /// Runs over `fd`, a stream socket already connected to the server (one end of a
    /// socketpair from `TestServer.client()`), which the client then owns.
    public init(connectedSocket fd: Int32, timeoutSeconds: Int = 5) {
        self.fd = fd
        self.timeoutSeconds = timeoutSeconds
        sendBuffer = .allocate(byteCount: 2 << 20, alignment: 16)
        setTimeout(seconds: timeoutSeconds)
        var sendTimeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Connects to 127.0.0.1:`port`.
    public convenience init(port: UInt16, timeoutSeconds: Int = 5) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let fd = try connectedSocket(AF_INET, to: address, "port \(port)")
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        self.init(connectedSocket: fd, timeoutSeconds: timeoutSeconds)
    }

    /// Connects to a unix-socket listener.
    public convenience init(unixPath: String, timeoutSeconds: Int = 5) throws {
        let fd = try connectedSocket(AF_UNIX, to: unixSocketAddress(unixPath), unixPath)
        self.init(connectedSocket: fd, timeoutSeconds: timeoutSeconds)
    }

    deinit {
        close()
        sendBuffer.deallocate()
        if transientFrame.count > 0 { transientFrame.deallocate() }
        for block in blocks { block.deallocate() }
    }

    public func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Changes the receive timeout (milliseconds precision).
    public func setTimeout(seconds: Int, milliseconds: Int = 0) {
        var tv = timeval(tv_sec: seconds, tv_usec: milliseconds * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A tag not used by this client before (wraps, skipping NOTAG).
    public func freshTag() -> UInt16 {
        let tag = nextTag
        nextTag = nextTag &+ 1
        if nextTag == NineP.noTag { nextTag = 1 }
        return tag
    }

    // MARK: Views owned by the client

    public func view(_ string: String) -> ByteView { view(Array(string.utf8)) }

    public func view(_ bytes: [UInt8]) -> ByteView {
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        blocks.append(block)
        let region = UnsafeMutableRawBufferPointer(rebasing: block[0..<bytes.count])
        region.copyBytes(from: bytes)
        return ByteView(UnsafeRawBufferPointer(region))
    }

    // MARK: Sending

    /// Writes raw bytes; false when the connection is gone.
    @discardableResult
    public func sendBytes(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { sendAll($0) }
    }

    private func sendAll(_ bytes: UnsafeRawBufferPointer) -> Bool {
        SocketIO.writeFully(fd, bytes) == .complete
    }

    /// The frame `encode` writes into the send buffer (valid until the next encoding); nil,
    /// with an issue, when it does not encode.
    private func encodedFrame(_ what: @autoclosure () -> String, _ encode: (inout WireWriter) throws -> Int) -> UnsafeRawBufferPointer? {
        var writer = WireWriter(sendBuffer)
        guard let length = try? encode(&writer) else {
            Issue.record("cannot encode \(what())")
            return nil
        }
        return UnsafeRawBufferPointer(rebasing: sendBuffer[0..<length])
    }

    /// Encodes `request` with `Request.encode(tag:into:)` and sends it.
    @discardableResult
    public func send(_ request: Request, tag: UInt16) -> Bool {
        encodedFrame("\(request.type)") { try request.encode(tag: tag, into: &$0) }.map(sendAll) ?? false
    }

    /// Twalk (Request.walk's names are a decoded view; the encoder helper takes strings).
    @discardableResult
    public func sendWalk(fid: UInt32, newfid: UInt32, names: [String], tag: UInt16) -> Bool {
        encodedFrame("Twalk") { try $0.twalk(tag: tag, fid: fid, newfid: newfid, names: names) }.map(sendAll) ?? false
    }

    // MARK: Receiving

    fileprivate enum ReadOutcome { case complete, closed, timeout }

    fileprivate func readFully(_ buffer: UnsafeMutableRawBufferPointer) -> ReadOutcome {
        switch SocketIO.readFully(fd, into: buffer, collecting: descriptors) {
        case .complete: .complete
        case .closed: .closed
        case .stalled: .timeout  // SO_RCVTIMEO
        }
    }

    /// Reads one reply frame and decodes it; a frame that does not decode is an issue.
    public func receive() -> Incoming {
        receiveFrame { size in
            let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
            blocks.append(frame)
            return frame
        }
    }

    /// Reads a frame into the buffer `place` gives for its size (nil: the size is impossible)
    /// and decodes it.
    private func receiveFrame(into place: (Int) -> UnsafeMutableRawBufferPointer?) -> Incoming {
        var header: UInt32 = 0
        switch withUnsafeMutableBytes(of: &header, { readFully($0) }) {
        case .closed: return .closed
        case .timeout: return .timeout
        case .complete: break
        }
        let size = Int(UInt32(littleEndian: header))
        guard size >= NineP.headerSize, size <= 64 << 20, let buffer = place(size) else {
            Issue.record("reply with impossible size \(size)")
            return .closed
        }
        let frame = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size])
        frame.storeBytes(of: header, as: UInt32.self)
        switch readFully(UnsafeMutableRawBufferPointer(rebasing: frame[4...])) {
        case .closed: return .closed
        case .timeout: return .timeout
        case .complete: break
        }
        do {
            return .message(try RMessage.decode(UnsafeRawBufferPointer(frame), msize: UInt32.max))
        } catch {
            Issue.record("reply does not decode: \(error)")
            return .closed
        }
    }

    /// Waits until the server closes the connection, skipping (and returning) any replies
    /// that arrive first; nil when the connection stayed open for the whole timeout.
    public func waitForClose() -> [RMessage]? {
        var seen: [RMessage] = []
        while true {
            switch receive() {
            case let .message(m): seen.append(m)
            case .closed: return seen
            case .timeout: return nil
            }
        }
    }

    /// The next reply, which must carry `tag`; Rlerror becomes `WireClientError.lerror`.
    public func reply(tag: UInt16) throws -> Response {
        switch receive() {
        case .closed: throw WireClientError.closed
        case .timeout: throw WireClientError.timeout
        case let .message(m):
            guard m.tag == tag else { throw WireClientError.unexpected("tag \(m.tag) (\(m.response.type)) where \(tag) was expected") }
            if case let .lerror(code) = m.response { throw WireClientError.lerror(code) }
            return m.response
        }
    }

    /// Sends `request` with a fresh tag and waits for its reply.
    public func rpc(_ request: Request) throws -> Response {
        let tag = freshTag()
        guard send(request, tag: tag) else { throw WireClientError.closed }
        return try reply(tag: tag)
    }
}

// MARK: - One call per message

extension WireClient {
    @discardableResult
    public func version(msize: UInt32 = 256 * 1024, version: String = "9P2000.L") throws -> (msize: UInt32, version: String) {
        guard send(.version(msize: msize, version: view(version)), tag: NineP.noTag) else { throw WireClientError.closed }
        guard case let .version(m, v) = try reply(tag: NineP.noTag) else { throw WireClientError.unexpected("not Rversion") }
        return (m, v.makeString())
    }

    @discardableResult
    public func attach(fid: UInt32 = 0, uname: String = "", aname: String = "", nuname: UInt32 = 0) throws -> Qid {
        let r = try rpc(.attach(fid: fid, afid: NineP.noFid, uname: view(uname), aname: view(aname), nuname: nuname))
        guard case let .attach(qid) = r else { throw WireClientError.unexpected("\(r.type)") }
        return qid
    }

    @discardableResult
    public func walk(_ fid: UInt32, _ newfid: UInt32, _ names: [String]) throws -> [Qid] {
        let tag = freshTag()
        guard sendWalk(fid: fid, newfid: newfid, names: names, tag: tag) else { throw WireClientError.closed }
        let r = try reply(tag: tag)
        guard case let .walk(qids) = r else { throw WireClientError.unexpected("\(r.type)") }
        return Array(qids)
    }

    @discardableResult
    public func lopen(_ fid: UInt32, _ flags: UInt32) throws -> Qid {
        let r = try rpc(.lopen(fid: fid, flags: flags))
        guard case let .lopen(qid, _) = r else { throw WireClientError.unexpected("\(r.type)") }
        return qid
    }

    @discardableResult
    public func lcreate(_ fid: UInt32, _ name: String, flags: UInt32 = OpenFlags.readWrite, mode: UInt32 = 0o644, gid: UInt32 = 0) throws -> Qid {
        let r = try rpc(.lcreate(fid: fid, name: view(name), flags: flags, mode: mode, gid: gid))
        guard case let .lcreate(qid, _) = r else { throw WireClientError.unexpected("\(r.type)") }
        return qid
    }

    public func read(_ fid: UInt32, offset: UInt64, count: UInt32) throws -> [UInt8] {
        let r = try rpc(.read(fid: fid, offset: offset, count: count))
        guard case let .read(data) = r else { throw WireClientError.unexpected("\(r.type)") }
        return Array(data)
    }

    @discardableResult
    public func write(_ fid: UInt32, offset: UInt64, _ data: [UInt8]) throws -> UInt32 {
        let r = try rpc(.write(fid: fid, offset: offset, data: view(data)))
        guard case let .write(count) = r else { throw WireClientError.unexpected("\(r.type)") }
        return count
    }

    public func clunk(_ fid: UInt32) throws {
        let r = try rpc(.clunk(fid: fid))
        guard case .clunk = r else { throw WireClientError.unexpected("\(r.type)") }
    }

    public func remove(_ fid: UInt32) throws {
        let r = try rpc(.remove(fid: fid))
        guard case .remove = r else { throw WireClientError.unexpected("\(r.type)") }
    }

    public func getattr(_ fid: UInt32, mask: UInt64 = GetattrMask.all) throws -> Attributes {
        let r = try rpc(.getattr(fid: fid, mask: mask))
        guard case let .getattr(a) = r else { throw WireClientError.unexpected("\(r.type)") }
        return a
    }

    public func setattr(_ fid: UInt32, _ fields: SetattrFields) throws {
        let r = try rpc(.setattr(fid: fid, fields))
        guard case .setattr = r else { throw WireClientError.unexpected("\(r.type)") }
    }

    public struct Entry {
        public var qid: Qid
        public var offset: UInt64
        public var type: UInt8
        public var name: String
    }

    public func readdir(_ fid: UInt32, offset: UInt64, count: UInt32) throws -> [Entry] {
        let r = try rpc(.readdir(fid: fid, offset: offset, count: count))
        guard case let .readdir(entries) = r else { throw WireClientError.unexpected("\(r.type)") }
        return entries.map { Entry(qid: $0.qid, offset: $0.offset, type: $0.type, name: $0.name.makeString()) }
    }

    @discardableResult
    public func mkdir(_ dfid: UInt32, _ name: String, mode: UInt32 = 0o755, gid: UInt32 = 0) throws -> Qid {
        let r = try rpc(.mkdir(dfid: dfid, name: view(name), mode: mode, gid: gid))
        guard case let .mkdir(qid) = r else { throw WireClientError.unexpected("\(r.type)") }
        return qid
    }

    @discardableResult
    public func symlink(_ dfid: UInt32, _ name: String, target: String, gid: UInt32 = 0) throws -> Qid {
        let r = try rpc(.symlink(fid: dfid, name: view(name), target: view(target), gid: gid))
        guard case let .symlink(qid) = r else { throw WireClientError.unexpected("\(r.type)") }
        return qid
    }

    public func readlink(_ fid: UInt32) throws -> String {
        let r = try rpc(.readlink(fid: fid))
        guard case let .readlink(target) = r else { throw WireClientError.unexpected("\(r.type)") }
        return target.makeString()
    }

    @discardableResult
    public func mknod(_ dfid: UInt32, _ name: String, mode: UInt32, major: UInt32 = 0, minor: UInt32 = 0, gid: UInt32 = 0) throws -> Qid {
        let r = try rpc(.mknod(dfid: dfid, name: view(name), mode: mode, major: major, minor: minor, gid: gid))
        guard case let .mknod(qid) = r else { throw WireClientError.unexpected("\(r.type)") }
        return qid
    }

    public func link(_ dfid: UInt32, _ fid: UInt32, _ name: String) throws {
        let r = try rpc(.link(dfid: dfid, fid: fid, name: view(name)))
        guard case .link = r else { throw WireClientError.unexpected("\(r.type)") }
    }

    public func rename(_ fid: UInt32, _ dfid: UInt32, _ name: String) throws {
        let r = try rpc(.rename(fid: fid, dfid: dfid, name: view(name)))
        guard case .rename = r else { throw WireClientError.unexpected("\(r.type)") }
    }

    public func renameat(_ olddir: UInt32, _ oldname: String, _ newdir: UInt32, _ newname: String) throws {
        let r = try rpc(.renameat(olddirfid: olddir, oldname: view(oldname), newdirfid: newdir, newname: view(newname)))
        guard case .renameat = r else { throw WireClientError.unexpected("\(r.type)") }
    }

    public func unlinkat(_ dfid: UInt32, _ name: String, flags: UInt32 = 0) throws {
        let r = try rpc(.unlinkat(dirfid: dfid, name: view(name), flags: flags))
        guard case .unlinkat = r else { throw WireClientError.unexpected("\(r.type)") }
    }

    public func statfs(_ fid: UInt32) throws -> StatfsFields {
        let r = try rpc(.statfs(fid: fid))
        guard case let .statfs(s) = r else { throw WireClientError.unexpected("\(r.type)") }
        return s
    }

    public func fsync(_ fid: UInt32, datasync: UInt32 = 0) throws {
        let r = try rpc(.fsync(fid: fid, datasync: datasync))
        guard case .fsync = r else { throw WireClientError.unexpected("\(r.type)") }
    }

    public func xattrwalk(_ fid: UInt32, _ newfid: UInt32, _ name: String) throws -> UInt64 {
        let r = try rpc(.xattrwalk(fid: fid, newfid: newfid, name: view(name)))
        guard case let .xattrwalk(size) = r else { throw WireClientError.unexpected("\(r.type)") }
        return size
    }

    public func xattrcreate(_ fid: UInt32, _ name: String, size: UInt64, flags: UInt32) throws {
        let r = try rpc(.xattrcreate(fid: fid, name: view(name), size: size, flags: flags))
        guard case .xattrcreate = r else { throw WireClientError.unexpected("\(r.type)") }
    }

    public func lock(_ fid: UInt32, type: UInt8, start: UInt64 = 0, length: UInt64 = 0) throws -> UInt8 {
        let fields = LockFields(type: type, flags: 0, start: start, length: length, processID: 4242, clientID: view("test-client"))
        let r = try rpc(.lock(fid: fid, fields))
        guard case let .lock(status) = r else { throw WireClientError.unexpected("\(r.type)") }
        return status
    }

    public func getlock(_ fid: UInt32, type: UInt8, start: UInt64 = 0, length: UInt64 = 0) throws -> GetlockFields {
        let fields = GetlockFields(type: type, start: start, length: length, processID: 4242, clientID: view("test-client"))
        let r = try rpc(.getlock(fid: fid, fields))
        guard case let .getlock(g) = r else { throw WireClientError.unexpected("\(r.type)") }
        return g
    }
}

// MARK: - Pipelining helpers for the Tflush tests

extension WireClient {
    /// Waits up to `milliseconds` for the socket to become readable (data, end of stream or an
    /// error); false when nothing happened in that time.
    public func pollReadable(milliseconds: Int32) -> Bool {
        guard fd >= 0 else { return true }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let rc = poll(&entry, 1, milliseconds)
            if rc < 0 && errno == EINTR { continue }
            return rc > 0
        }
    }

    /// Like `receive()`, but the frame lands in one buffer reused by every call: the decoded
    /// message's views are valid only until the next `receiveTransient()`. For tests that
    /// receive thousands of replies.
    public func receiveTransient() -> Incoming {
        if transientFrame.count == 0 {
            transientFrame = .allocate(byteCount: 2 << 20, alignment: 16)
        }
        return receiveFrame { size in size <= transientFrame.count ? transientFrame : nil }
    }

    /// The bytes of `request` as `send(_:tag:)` would write them (to concatenate frames, or to
    /// send them from another thread with `sendRaw`).
    public func encoded(_ request: Request, tag: UInt16) -> [UInt8] {
        encodedFrame("\(request.type)") { try request.encode(tag: tag, into: &$0) }.map(Array.init) ?? []
    }

    /// The bytes of a Twalk.
    public func encodedWalk(fid: UInt32, newfid: UInt32, names: [String], tag: UInt16) -> [UInt8] {
        encodedFrame("Twalk") { try $0.twalk(tag: tag, fid: fid, newfid: newfid, names: names) }.map(Array.init) ?? []
    }

    /// Closes with a reset (SO_LINGER 0): the server sees ECONNRESET, not an orderly end.
    public func abortiveClose() {
        guard fd >= 0 else { return }
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }
}

/// Writes all of `bytes` to socket `fd` (any thread); false when the peer is gone or the send
/// timeout expired.
public func sendRaw(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { SocketIO.writeFully(fd, $0) == .complete }
}

/// A new stream socket of `family` connected to `address`.
private func connectedSocket<Address>(_ family: Int32, to address: Address, _ name: String) throws -> Int32 {
    let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw WireClientError.unexpected("socket: errno \(errno)") }
    var address = address
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<Address>.size)) }
    }
    guard rc == 0 else {
        let e = errno
        Glibc.close(fd)
        throw WireClientError.unexpected("connect to \(name): errno \(e)")
    }
    return fd
}

// MARK: - Requests that wait on the outside world

extension WireClient {
    /// Makes a FIFO `name` in directory fid `dfid` over the wire (Tmknod) and opens it O_RDWR as
    /// `fid` (an open that needs no peer): a Tread of it then waits until data comes or it is
    /// flushed.
    public func openFIFO(_ dfid: UInt32, _ name: String, as fid: UInt32, mode: UInt32 = 0o666) throws {
        try mknod(dfid, name, mode: Mode.fifo | mode)
        try walk(dfid, fid, [name])
        try lopen(fid, OpenFlags.readWrite)
    }

    /// Records an issue for anything that arrives within `milliseconds`.
    public func expectNothing(milliseconds: Int, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        setTimeout(seconds: 0, milliseconds: milliseconds)
        defer { setTimeout(seconds: timeoutSeconds) }
        while case let .message(m) = receive() {
            Issue.record("\(what): got tag \(m.tag) \(describeResponse(m.response))", sourceLocation: sourceLocation)
        }
    }
}

/// A reply as messages name it: Rlerror with its errno, else the type.
public func describeResponse(_ response: Response) -> String {
    if case let .lerror(code) = response { return "Rlerror(\(code))" }
    return "\(response.type)"
}
