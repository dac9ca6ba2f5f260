import Glibc
import NinePTransport
import NinePWire
import Testing

/// What a test sees when it waits for a reply.
enum Incoming {
    case message(RMessage)
    /// The server closed (or reset) the connection.
    case closed
    /// Nothing arrived within the receive timeout (SO_RCVTIMEO).
    case timeout
}

/// Why a client call did not give the expected reply.
enum ClientError: Error, Equatable, CustomStringConvertible {
    case lerror(UInt32)
    case unexpected(String)
    case closed
    case timeout

    var description: String {
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
func errnoOf<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> UInt32? {
    do {
        _ = try body()
        return nil
    } catch let ClientError.lerror(code) {
        return code
    } catch {
        Issue.record("expected Rlerror, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A small blocking 9P client over TCP for tests: frames are encoded with NinePWire's
/// `Request.encode` and replies decoded with `RMessage.decode`. Every receive is bounded by
/// SO_RCVTIMEO, so no test can hang on a server that does not answer.
///
/// The client owns the memory behind the `ByteView`s it hands out (strings it encodes and the
/// frames it receives), so decoded replies stay valid for the client's lifetime.
final class RawClient {
    private(set) var fd: Int32
    private var blocks: [UnsafeMutableRawBufferPointer] = []
    fileprivate let sendBuffer: UnsafeMutableRawBufferPointer
    /// The reused frame of `receiveTransient()` (allocated on first use).
    fileprivate var transientFrame = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var nextTag: UInt16 = 1
    let timeoutSeconds: Int

    /// `receiveBufferBytes` and `sendBufferBytes` set SO_RCVBUF and SO_SNDBUF before
    /// connecting (small socket buffers: a client whose traffic backs up quickly).
    init(port: UInt16, timeoutSeconds: Int = 5, receiveBufferBytes: Int32? = nil, sendBufferBytes: Int32? = nil) throws {
        self.timeoutSeconds = timeoutSeconds
        sendBuffer = .allocate(byteCount: 2 << 20, alignment: 16)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError.unexpected("socket: errno \(errno)") }
        if var bytes = receiveBufferBytes {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
        }
        if var bytes = sendBufferBytes {
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            fd = -1
            throw ClientError.unexpected("connect to port \(port): errno \(e)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setTimeout(seconds: timeoutSeconds)
        var sendTimeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Connects to a unix-socket listener.
    init(unixPath: String, timeoutSeconds: Int = 5) throws {
        self.timeoutSeconds = timeoutSeconds
        sendBuffer = .allocate(byteCount: 2 << 20, alignment: 16)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError.unexpected("socket: errno \(errno)") }
        var address = unixSocketAddress(unixPath)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            fd = -1
            throw ClientError.unexpected("connect to \(unixPath): errno \(e)")
        }
        setTimeout(seconds: timeoutSeconds)
    }

    deinit {
        close()
        sendBuffer.deallocate()
        if transientFrame.count > 0 { transientFrame.deallocate() }
        for block in blocks { block.deallocate() }
    }

    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Changes the receive timeout (milliseconds precision).
    func setTimeout(seconds: Int, milliseconds: Int = 0) {
        var tv = timeval(tv_sec: seconds, tv_usec: milliseconds * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A tag not used by this client before (wraps, skipping NOTAG).
    func freshTag() -> UInt16 {
        let tag = nextTag
        nextTag = nextTag &+ 1
        if nextTag == NineP.noTag { nextTag = 1 }
        return tag
    }

    // MARK: Views owned by the client

    func view(_ string: String) -> ByteView { view(Array(string.utf8)) }

    func view(_ bytes: [UInt8]) -> ByteView {
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        blocks.append(block)
        let region = UnsafeMutableRawBufferPointer(rebasing: block[0..<bytes.count])
        region.copyBytes(from: bytes)
        return ByteView(UnsafeRawBufferPointer(region))
    }

    // MARK: Sending

    /// Writes raw bytes; false when the connection is gone.
    @discardableResult
    func sendBytes(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { sendAll($0) }
    }

    private func sendAll(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            if n > 0 {
                done += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }

    /// Encodes `request` with `Request.encode(tag:into:)` and sends it.
    @discardableResult
    func send(_ request: Request, tag: UInt16) -> Bool {
        var writer = WireWriter(sendBuffer)
        guard let length = try? request.encode(tag: tag, into: &writer) else {
            Issue.record("cannot encode \(request.type)")
            return false
        }
        return sendAll(UnsafeRawBufferPointer(rebasing: sendBuffer[0..<length]))
    }

    /// Twalk (Request.walk's names are a decoded view; the encoder helper takes strings).
    @discardableResult
    func sendWalk(fid: UInt32, newfid: UInt32, names: [String], tag: UInt16) -> Bool {
        var writer = WireWriter(sendBuffer)
        guard let length = try? writer.twalk(tag: tag, fid: fid, newfid: newfid, names: names) else {
            Issue.record("cannot encode Twalk")
            return false
        }
        return sendAll(UnsafeRawBufferPointer(rebasing: sendBuffer[0..<length]))
    }

    // MARK: Receiving

    fileprivate enum ReadOutcome { case complete, closed, timeout }

    fileprivate func readFully(_ buffer: UnsafeMutableRawBufferPointer) -> ReadOutcome {
        var done = 0
        while done < buffer.count {
            let n = recv(fd, buffer.baseAddress! + done, buffer.count - done, 0)
            if n > 0 {
                done += n
            } else if n == 0 {
                return .closed
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                return .timeout
            } else {
                return .closed  // ECONNRESET and friends
            }
        }
        return .complete
    }

    /// Reads one reply frame and decodes it; a frame that does not decode is an issue.
    func receive() -> Incoming {
        var header = [UInt8](repeating: 0, count: 4)
        let outcome = header.withUnsafeMutableBytes { readFully($0) }
        switch outcome {
        case .closed: return .closed
        case .timeout: return .timeout
        case .complete: break
        }
        let size = Int(UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24)
        guard size >= NineP.headerSize, size <= 64 << 20 else {
            Issue.record("reply with impossible size \(size)")
            return .closed
        }
        let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        blocks.append(frame)
        frame.copyBytes(from: header)
        switch readFully(UnsafeMutableRawBufferPointer(rebasing: frame[4..<size])) {
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
    func waitForClose() -> [RMessage]? {
        var seen: [RMessage] = []
        while true {
            switch receive() {
            case let .message(m): seen.append(m)
            case .closed: return seen
            case .timeout: return nil
            }
        }
    }

    /// The next reply, which must carry `tag`; Rlerror becomes `ClientError.lerror`.
    func reply(tag: UInt16) throws -> Response {
        switch receive() {
        case .closed: throw ClientError.closed
        case .timeout: throw ClientError.timeout
        case let .message(m):
            guard m.tag == tag else { throw ClientError.unexpected("tag \(m.tag) (\(m.response.type)) where \(tag) was expected") }
            if case let .lerror(code) = m.response { throw ClientError.lerror(code) }
            return m.response
        }
    }

    /// Sends `request` with a fresh tag and waits for its reply.
    func rpc(_ request: Request) throws -> Response {
        let tag = freshTag()
        guard send(request, tag: tag) else { throw ClientError.closed }
        return try reply(tag: tag)
    }
}

// MARK: - One call per message

extension RawClient {
    @discardableResult
    func version(msize: UInt32 = 256 * 1024, version: String = "9P2000.L") throws -> (msize: UInt32, version: String) {
        guard send(.version(msize: msize, version: view(version)), tag: NineP.noTag) else { throw ClientError.closed }
        guard case let .version(m, v) = try reply(tag: NineP.noTag) else { throw ClientError.unexpected("not Rversion") }
        return (m, v.makeString())
    }

    @discardableResult
    func attach(fid: UInt32 = 0, uname: String = "", aname: String = "", nuname: UInt32 = 0) throws -> Qid {
        let r = try rpc(.attach(fid: fid, afid: NineP.noFid, uname: view(uname), aname: view(aname), nuname: nuname))
        guard case let .attach(qid) = r else { throw ClientError.unexpected("\(r.type)") }
        return qid
    }

    @discardableResult
    func walk(_ fid: UInt32, _ newfid: UInt32, _ names: [String]) throws -> [Qid] {
        let tag = freshTag()
        guard sendWalk(fid: fid, newfid: newfid, names: names, tag: tag) else { throw ClientError.closed }
        let r = try reply(tag: tag)
        guard case let .walk(qids) = r else { throw ClientError.unexpected("\(r.type)") }
        return Array(qids)
    }

    @discardableResult
    func lopen(_ fid: UInt32, _ flags: UInt32) throws -> Qid {
        let r = try rpc(.lopen(fid: fid, flags: flags))
        guard case let .lopen(qid, _) = r else { throw ClientError.unexpected("\(r.type)") }
        return qid
    }

    @discardableResult
    func lcreate(_ fid: UInt32, _ name: String, flags: UInt32 = OpenFlags.readWrite, mode: UInt32 = 0o644, gid: UInt32 = 0) throws -> Qid {
        let r = try rpc(.lcreate(fid: fid, name: view(name), flags: flags, mode: mode, gid: gid))
        guard case let .lcreate(qid, _) = r else { throw ClientError.unexpected("\(r.type)") }
        return qid
    }

    func read(_ fid: UInt32, offset: UInt64, count: UInt32) throws -> [UInt8] {
        let r = try rpc(.read(fid: fid, offset: offset, count: count))
        guard case let .read(data) = r else { throw ClientError.unexpected("\(r.type)") }
        return Array(data)
    }

    @discardableResult
    func write(_ fid: UInt32, offset: UInt64, _ data: [UInt8]) throws -> UInt32 {
        let r = try rpc(.write(fid: fid, offset: offset, data: view(data)))
        guard case let .write(count) = r else { throw ClientError.unexpected("\(r.type)") }
        return count
    }

    func clunk(_ fid: UInt32) throws {
        let r = try rpc(.clunk(fid: fid))
        guard case .clunk = r else { throw ClientError.unexpected("\(r.type)") }
    }

    func remove(_ fid: UInt32) throws {
        let r = try rpc(.remove(fid: fid))
        guard case .remove = r else { throw ClientError.unexpected("\(r.type)") }
    }

    func getattr(_ fid: UInt32, mask: UInt64 = GetattrMask.all) throws -> Attributes {
        let r = try rpc(.getattr(fid: fid, mask: mask))
        guard case let .getattr(a) = r else { throw ClientError.unexpected("\(r.type)") }
        return a
    }

    func setattr(_ fid: UInt32, _ fields: SetattrFields) throws {
        let r = try rpc(.setattr(fid: fid, fields))
        guard case .setattr = r else { throw ClientError.unexpected("\(r.type)") }
    }

    struct Entry {
        var qid: Qid
        var offset: UInt64
        var type: UInt8
        var name: String
    }

    func readdir(_ fid: UInt32, offset: UInt64, count: UInt32) throws -> [Entry] {
        let r = try rpc(.readdir(fid: fid, offset: offset, count: count))
        guard case let .readdir(entries) = r else { throw ClientError.unexpected("\(r.type)") }
        return entries.map { Entry(qid: $0.qid, offset: $0.offset, type: $0.type, name: $0.name.makeString()) }
    }

    @discardableResult
    func mkdir(_ dfid: UInt32, _ name: String, mode: UInt32 = 0o755, gid: UInt32 = 0) throws -> Qid {
        let r = try rpc(.mkdir(dfid: dfid, name: view(name), mode: mode, gid: gid))
        guard case let .mkdir(qid) = r else { throw ClientError.unexpected("\(r.type)") }
        return qid
    }

    @discardableResult
    func symlink(_ dfid: UInt32, _ name: String, target: String, gid: UInt32 = 0) throws -> Qid {
        let r = try rpc(.symlink(fid: dfid, name: view(name), target: view(target), gid: gid))
        guard case let .symlink(qid) = r else { throw ClientError.unexpected("\(r.type)") }
        return qid
    }

    func readlink(_ fid: UInt32) throws -> String {
        let r = try rpc(.readlink(fid: fid))
        guard case let .readlink(target) = r else { throw ClientError.unexpected("\(r.type)") }
        return target.makeString()
    }

    @discardableResult
    func mknod(_ dfid: UInt32, _ name: String, mode: UInt32, major: UInt32 = 0, minor: UInt32 = 0, gid: UInt32 = 0) throws -> Qid {
        let r = try rpc(.mknod(dfid: dfid, name: view(name), mode: mode, major: major, minor: minor, gid: gid))
        guard case let .mknod(qid) = r else { throw ClientError.unexpected("\(r.type)") }
        return qid
    }

    func link(_ dfid: UInt32, _ fid: UInt32, _ name: String) throws {
        let r = try rpc(.link(dfid: dfid, fid: fid, name: view(name)))
        guard case .link = r else { throw ClientError.unexpected("\(r.type)") }
    }

    func rename(_ fid: UInt32, _ dfid: UInt32, _ name: String) throws {
        let r = try rpc(.rename(fid: fid, dfid: dfid, name: view(name)))
        guard case .rename = r else { throw ClientError.unexpected("\(r.type)") }
    }

    func renameat(_ olddir: UInt32, _ oldname: String, _ newdir: UInt32, _ newname: String) throws {
        let r = try rpc(.renameat(olddirfid: olddir, oldname: view(oldname), newdirfid: newdir, newname: view(newname)))
        guard case .renameat = r else { throw ClientError.unexpected("\(r.type)") }
    }

    func unlinkat(_ dfid: UInt32, _ name: String, flags: UInt32 = 0) throws {
        let r = try rpc(.unlinkat(dirfid: dfid, name: view(name), flags: flags))
        guard case .unlinkat = r else { throw ClientError.unexpected("\(r.type)") }
    }

    func statfs(_ fid: UInt32) throws -> StatfsFields {
        let r = try rpc(.statfs(fid: fid))
        guard case let .statfs(s) = r else { throw ClientError.unexpected("\(r.type)") }
        return s
    }

    func fsync(_ fid: UInt32, datasync: UInt32 = 0) throws {
        let r = try rpc(.fsync(fid: fid, datasync: datasync))
        guard case .fsync = r else { throw ClientError.unexpected("\(r.type)") }
    }

    func xattrwalk(_ fid: UInt32, _ newfid: UInt32, _ name: String) throws -> UInt64 {
        let r = try rpc(.xattrwalk(fid: fid, newfid: newfid, name: view(name)))
        guard case let .xattrwalk(size) = r else { throw ClientError.unexpected("\(r.type)") }
        return size
    }

    func xattrcreate(_ fid: UInt32, _ name: String, size: UInt64, flags: UInt32) throws {
        let r = try rpc(.xattrcreate(fid: fid, name: view(name), size: size, flags: flags))
        guard case .xattrcreate = r else { throw ClientError.unexpected("\(r.type)") }
    }

    func lock(_ fid: UInt32, type: UInt8, start: UInt64 = 0, length: UInt64 = 0) throws -> UInt8 {
        let fields = LockFields(type: type, flags: 0, start: start, length: length, processID: 4242, clientID: view("test-client"))
        let r = try rpc(.lock(fid: fid, fields))
        guard case let .lock(status) = r else { throw ClientError.unexpected("\(r.type)") }
        return status
    }

    func getlock(_ fid: UInt32, type: UInt8, start: UInt64 = 0, length: UInt64 = 0) throws -> GetlockFields {
        let fields = GetlockFields(type: type, start: start, length: length, processID: 4242, clientID: view("test-client"))
        let r = try rpc(.getlock(fid: fid, fields))
        guard case let .getlock(g) = r else { throw ClientError.unexpected("\(r.type)") }
        return g
    }
}

// MARK: - Pipelining helpers for the Tflush tests

extension RawClient {
    /// Waits up to `milliseconds` for the socket to become readable (data, end of stream or an
    /// error); false when nothing happened in that time.
    func pollReadable(milliseconds: Int32) -> Bool {
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
    func receiveTransient() -> Incoming {
        if transientFrame.count == 0 {
            transientFrame = .allocate(byteCount: 2 << 20, alignment: 16)
        }
        let header = UnsafeMutableRawBufferPointer(rebasing: transientFrame[0..<4])
        switch readFully(header) {
        case .closed: return .closed
        case .timeout: return .timeout
        case .complete: break
        }
        let size = Int(header.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian)
        guard size >= NineP.headerSize, size <= transientFrame.count else {
            Issue.record("reply with impossible size \(size)")
            return .closed
        }
        switch readFully(UnsafeMutableRawBufferPointer(rebasing: transientFrame[4..<size])) {
        case .closed: return .closed
        case .timeout: return .timeout
        case .complete: break
        }
        do {
            return .message(try RMessage.decode(UnsafeRawBufferPointer(rebasing: transientFrame[0..<size]), msize: UInt32.max))
        } catch {
            Issue.record("reply does not decode: \(error)")
            return .closed
        }
    }

    /// The bytes of `request` as `send(_:tag:)` would write them (to concatenate frames, or to
    /// send them from another thread with `sendRaw`).
    func encoded(_ request: Request, tag: UInt16) -> [UInt8] {
        var writer = WireWriter(sendBuffer)
        guard let length = try? request.encode(tag: tag, into: &writer) else {
            Issue.record("cannot encode \(request.type)")
            return []
        }
        return Array(UnsafeRawBufferPointer(rebasing: sendBuffer[0..<length]))
    }

    /// The bytes of a Twalk.
    func encodedWalk(fid: UInt32, newfid: UInt32, names: [String], tag: UInt16) -> [UInt8] {
        var writer = WireWriter(sendBuffer)
        guard let length = try? writer.twalk(tag: tag, fid: fid, newfid: newfid, names: names) else {
            Issue.record("cannot encode Twalk")
            return []
        }
        return Array(UnsafeRawBufferPointer(rebasing: sendBuffer[0..<length]))
    }

    /// Closes with a reset (SO_LINGER 0): the server sees ECONNRESET, not an orderly end.
    func abortiveClose() {
        guard fd >= 0 else { return }
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }
}

/// Writes all of `bytes` to socket `fd` (any thread); false when the peer is gone or the send
/// timeout expired.
func sendRaw(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { raw in
        var done = 0
        while done < raw.count {
            let n = Glibc.send(fd, raw.baseAddress! + done, raw.count - done, Int32(MSG_NOSIGNAL))
            if n > 0 {
                done += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }
}
