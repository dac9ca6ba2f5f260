import Glibc
import NinePClient
import NinePTransport
import NinePWire
import Synchronization

/// A 9P server written for one test, at the other end of a socketpair from its client: it
/// answers Tversion and Tattach itself and hands every other message to the test's handler, which answers (or does not) as the scenario needs.
/// It records every message it receives, so a test can check what the client sent.
public final class FakeServer: Sendable {
    /// What arrived, in order.
    public struct Received: Sendable, Equatable {
        public let type: MessageType
        public let tag: UInt16
        /// Tflush's oldtag; the fid of fid-based requests; Twalk's newfid.
        public let oldtag: UInt16?
        public let fid: UInt32?
        public let newfid: UInt32?
        public let names: Int
        /// Twrite's byte count.
        public var size = 0
    }

    private let received = Mutex<[Received]>([])
    /// The server's end of the socketpair (-1 once closed).
    private let peerFD: Mutex<Int32>
    /// The client's end, until `connect` takes it.
    private let clientFD: Mutex<Int32>
    private let sendLock = Mutex(())
    private let handler: @Sendable (FakeServer, Received) -> Void

    public init(_ handler: @escaping @Sendable (FakeServer, Received) -> Void) throws {
        let (client, server) = try makeSocketPair()
        peerFD = Mutex(server)
        clientFD = Mutex(client)
        self.handler = handler
        DaemonThread.start(name: "fake-9p") { [self] in serve(server) }
    }

    deinit {
        let client = clientFD.withLock { $0 }
        if client >= 0 { Glibc.close(client) }
    }

    /// A NinePClient connected to this server (once: the client gets the socketpair's end).
    public func connect(msize: UInt32 = 65536, maxInFlight: Int = 32, flushGrace: Duration = .milliseconds(250), callersRead: Bool = false) async throws -> NinePClient {
        let fd = clientFD.withLock { fd in
            defer { fd = -1 }
            return fd
        }
        guard fd >= 0 else { throw WireClientError.unexpected("FakeServer.connect called twice") }
        var configuration = ClientConfiguration(
            address: .unix(path: "fake-server"), uname: "test", uid: 0, msize: msize, maxInFlight: maxInFlight, flushGrace: flushGrace)
        configuration.callersRead = callersRead
        return try await NinePClient.connect(configuration, connectedSocket: fd)
    }

    public var log: [Received] { received.withLock { $0 } }

    /// Closes the client's connection (as a crashing server would).
    public func dropConnection() {
        peerFD.withLock { fd in
            if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    public func stop() { dropConnection() }

    private func serve(_ fd: Int32) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while SocketIO.readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<7])) == .complete {
            guard let header = try? FrameHeader.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<7]), msize: 1 << 20),
                  SocketIO.readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[7..<Int(header.size)])) == .complete,
                  let message = try? TMessage.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<Int(header.size)]), msize: 1 << 20)
            else { break }
            let record = FakeServer.record(message)
            received.withLock { $0.append(record) }
            switch message.request {
            case let .version(msize, _):
                reply(tag: message.tag) { w, tag in try Response.version(msize: min(msize, 1 << 20), version: ByteView(static: "9P2000.L")).encode(tag: tag, into: &w) }
            case .attach:
                reply(tag: message.tag) { w, tag in try Response.attach(qid: Qid(type: Qid.typeDir, version: 0, path: 1)).encode(tag: tag, into: &w) }
            default:
                handler(self, record)
            }
        }
        peerFD.withLock { fd in
            Glibc.close(fd)
            fd = -1
        }
    }

    private static func record(_ message: TMessage) -> Received {
        switch message.request {
        case let .flush(oldtag): Received(type: .tflush, tag: message.tag, oldtag: oldtag, fid: nil, newfid: nil, names: 0)
        case let .walk(fid, newfid, names): Received(type: .twalk, tag: message.tag, oldtag: nil, fid: fid, newfid: newfid, names: names.count)
        case let .write(fid, _, data):
            Received(type: .twrite, tag: message.tag, oldtag: nil, fid: fid, newfid: nil, names: 0, size: data.count)
        case let .clunk(fid), let .getattr(fid, _), let .read(fid, _, _), let .lopen(fid, _):
            Received(type: message.request.type, tag: message.tag, oldtag: nil, fid: fid, newfid: nil, names: 0)
        default: Received(type: message.request.type, tag: message.tag, oldtag: nil, fid: nil, newfid: nil, names: 0)
        }
    }

    // MARK: Replies

    /// Sends one reply frame encoded by `encode`.
    public func reply(tag: UInt16, _ encode: (inout WireWriter, UInt16) throws -> Void) {
        var bytes = [UInt8](repeating: 0, count: 4096)
        let length = bytes.withUnsafeMutableBytes { raw -> Int in
            var writer = WireWriter(raw)
            try? encode(&writer, tag)
            return writer.offset
        }
        bytes.withUnsafeBytes { write(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
    }

    /// Writes one whole frame (frames of several threads never interleave).
    private func write(_ frame: UnsafeRawBufferPointer) {
        let fd = peerFD.withLock { $0 }
        sendLock.withLock { _ in _ = SocketIO.writeFully(fd, frame) }
    }

    public func rflush(tag: UInt16) { reply(tag: tag) { w, tag in try Response.flush.encode(tag: tag, into: &w) } }
    public func rclunk(tag: UInt16) { reply(tag: tag) { w, tag in try Response.clunk.encode(tag: tag, into: &w) } }
    public func rlerror(tag: UInt16, _ errno: UInt32) { reply(tag: tag) { w, tag in try w.rlerror(tag: tag, errno: errno) } }

    /// 9P2000.u's Rerror (type 107: ename[s] errno[4]), built by hand as another server sends it.
    public func rerror(tag: UInt16, _ ename: String, errno: UInt32) {
        let name = Array(ename.utf8)
        var frame: [UInt8] = [0, 0, 0, 0, 107, UInt8(tag & 0xFF), UInt8(tag >> 8)]
        frame += [UInt8(name.count & 0xFF), UInt8(name.count >> 8)] + name
        frame += (0..<4).map { UInt8(truncatingIfNeeded: errno >> ($0 * 8)) }
        let size = UInt32(frame.count)
        frame.replaceSubrange(0..<4, with: (0..<4).map { UInt8(truncatingIfNeeded: size >> ($0 * 8)) })
        frame.withUnsafeBytes { write($0) }
    }

    public func rwalk(tag: UInt16, names: Int) {
        reply(tag: tag) { w, tag in
            try w.beginRwalk(tag: tag)
            for index in 0..<names { try w.qid(Qid(type: 0, version: 0, path: UInt64(100 + index))) }
            w.finishRwalk(count: names)
        }
    }

    public func rgetattr(tag: UInt16, size: UInt64 = 42, qid: Qid = Qid(type: 0, version: 0, path: 0)) {
        var attributes = Attributes()
        attributes.valid = GetattrMask.basic
        attributes.qid = qid
        attributes.mode = qid.type & Qid.typeDir != 0 ? 0o040755 : 0o100644
        attributes.size = size
        reply(tag: tag) { w, tag in try Response.getattr(attributes).encode(tag: tag, into: &w) }
    }

    public func rlcreate(tag: UInt16, qid: Qid) {
        reply(tag: tag) { w, tag in try Response.lcreate(qid: qid, iounit: 0).encode(tag: tag, into: &w) }
    }

    /// The usual answer to anything the scenario does not care about.
    public func answerNormally(_ message: Received) {
        switch message.type {
        case .tclunk: rclunk(tag: message.tag)
        case .tflush: rflush(tag: message.tag)
        case .twalk: rwalk(tag: message.tag, names: message.names)
        case .tgetattr: rgetattr(tag: message.tag)
        case .twrite: reply(tag: message.tag) { w, tag in try Response.write(count: UInt32(message.size)).encode(tag: tag, into: &w) }
        default: rlerror(tag: message.tag, 95)
        }
    }
}

extension FakeServer {
    /// A server on which one-name walks are never answered; every other request is answered
    /// normally, and a Tflush with Rflush at once (`answerFlushes`) or never.
    public static func withStuckWalks(answerFlushes: Bool) throws -> FakeServer {
        try FakeServer { server, message in
            switch message.type {
            case .twalk where message.names == 1: break
            case .tflush where !answerFlushes: break
            case .tflush: server.rflush(tag: message.tag)
            default: server.answerNormally(message)
            }
        }
    }
}
