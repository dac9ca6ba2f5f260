import Glibc
import NinePTransport
import NinePWire
import Synchronization

/// A 9P server written for one test: it answers Tversion and Tattach itself and hands every
/// other message to the test's handler, which answers (or does not) as the scenario needs.
/// It records every message it receives, so a test can check what the client sent.
final class FakeServer: Sendable {
    /// What arrived, in order.
    struct Received: Sendable, Equatable {
        let type: MessageType
        let tag: UInt16
        /// Tflush's oldtag; the fid of fid-based requests; Twalk's newfid.
        let oldtag: UInt16?
        let fid: UInt32?
        let newfid: UInt32?
        let names: Int
        /// Twrite's byte count.
        var size = 0
    }

    let port: UInt16
    private let listener: Listener
    private let received = Mutex<[Received]>([])
    private let peerFD = Mutex<Int32>(-1)
    private let sendLock = Mutex(())
    private let handler: @Sendable (FakeServer, Received) -> Void

    init(_ handler: @escaping @Sendable (FakeServer, Received) -> Void) throws {
        listener = try Listener(.tcp(host: "127.0.0.1", port: 0))
        port = listener.boundPort
        self.handler = handler
        DaemonThread.start(name: "fake-9p") { [self] in serve() }
    }

    var address: String { "tcp:127.0.0.1:\(port)" }
    var log: [Received] { received.withLock { $0 } }

    /// Closes the client's connection (as a crashing server would).
    func dropConnection() {
        let fd = peerFD.withLock { $0 }
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    func stop() {
        listener.close()
        dropConnection()
    }

    private func serve() {
        let fd = ninepAccept(listener.fd)
        guard fd >= 0 else { return }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        peerFD.withLock { $0 = fd }
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
        close(fd)
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
    func reply(tag: UInt16, _ encode: (inout WireWriter, UInt16) throws -> Void) {
        let fd = peerFD.withLock { $0 }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let length = bytes.withUnsafeMutableBytes { raw -> Int in
            var writer = WireWriter(raw)
            try? encode(&writer, tag)
            return writer.offset
        }
        sendLock.withLock { _ in _ = bytes.withUnsafeBytes { SocketIO.writeFully(fd, UnsafeRawBufferPointer(rebasing: $0[0..<length])) } }
    }

    func rflush(tag: UInt16) { reply(tag: tag) { w, tag in try Response.flush.encode(tag: tag, into: &w) } }
    func rclunk(tag: UInt16) { reply(tag: tag) { w, tag in try Response.clunk.encode(tag: tag, into: &w) } }
    func rlerror(tag: UInt16, _ errno: UInt32) { reply(tag: tag) { w, tag in try w.rlerror(tag: tag, errno: errno) } }

    /// 9P2000.u's Rerror (type 107: ename[s] errno[4]), built by hand as another server sends it.
    func rerror(tag: UInt16, _ ename: String, errno: UInt32) {
        let name = Array(ename.utf8)
        var frame: [UInt8] = [0, 0, 0, 0, 107, UInt8(tag & 0xFF), UInt8(tag >> 8)]
        frame += [UInt8(name.count & 0xFF), UInt8(name.count >> 8)] + name
        frame += (0..<4).map { UInt8(truncatingIfNeeded: errno >> ($0 * 8)) }
        let size = UInt32(frame.count)
        frame.replaceSubrange(0..<4, with: (0..<4).map { UInt8(truncatingIfNeeded: size >> ($0 * 8)) })
        let fd = peerFD.withLock { $0 }
        sendLock.withLock { _ in _ = frame.withUnsafeBytes { SocketIO.writeFully(fd, $0) } }
    }

    func rwalk(tag: UInt16, names: Int) {
        reply(tag: tag) { w, tag in
            try w.beginRwalk(tag: tag)
            for index in 0..<names { try w.qid(Qid(type: 0, version: 0, path: UInt64(100 + index))) }
            w.finishRwalk(count: names)
        }
    }

    func rgetattr(tag: UInt16, size: UInt64 = 42) {
        var attributes = Attributes()
        attributes.valid = GetattrMask.basic
        attributes.mode = 0o100644
        attributes.size = size
        reply(tag: tag) { w, tag in try Response.getattr(attributes).encode(tag: tag, into: &w) }
    }

    /// The usual answer to anything the scenario does not care about.
    func answerNormally(_ message: Received) {
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

private func ninepAccept(_ fd: Int32) -> Int32 {
    while true {
        let client = accept(fd, nil, nil)
        if client >= 0 || errno != EINTR { return client }
    }
}

extension FakeServer {
    /// A server on which one-name walks are never answered; every other request is answered
    /// normally, and a Tflush with Rflush at once (`answerFlushes`) or never.
    static func withStuckWalks(answerFlushes: Bool) throws -> FakeServer {
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
