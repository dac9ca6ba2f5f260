import Dispatch
import Glibc
import NinePWire
import Synchronization

/// One memory-pressure client: a connection keeping `depth` streams in flight until the
/// deadline, each stream owning a slot of the connection's file and looping Twrite(pattern of
/// (connection, slot, generation)) -> Tread -> byte comparison. It sends from a thread of its
/// own while it reads replies, as the Linux client does: one that sends and reads from one
/// thread blocks in send() while its replies pile up unread, holding the server's memory.
struct PressureClient {
    let index: Int
    let endpoint: Endpoint
    let export: String
    let msize: UInt32
    let depth: Int
    let deadline: Double
    let timeout: Double

    static let fileFid: UInt32 = 2

    enum Kind: Sendable { case write, read }

    /// What the receiving thread hands the sending one: everything needed to build the frame.
    struct Outgoing: Sendable {
        let tag: UInt16
        let kind: Kind
        let slot: Int
        let generation: Int
    }

    struct Result {
        var requests = 0, failed = 0, corrupted = 0, bytes = 0, msize = 0, io = 0
        var lost = false
        var errors: [String] = []
        var maxLatency = 0.0

        mutating func error(_ text: String) {
            if errors.count < 5 { errors.append(text) }
        }

        func json(index: Int) -> JSON {
            .object([
                ("index", .int(index)), ("requests", .int(requests)), ("failed", .int(failed)), ("corrupted", .int(corrupted)),
                ("lost", .bool(lost)), ("errors", JSON.strings(errors)), ("bytes", .int(bytes)), ("msize", .int(msize)),
                ("io", .int(io)), ("max_latency", .double(maxLatency)),
            ])
        }
    }

    func run() -> JSON {
        var out = Result()
        var session: RawSession? = nil
        var sender: FrameSender? = nil
        do {
            let connection = try RawSession.connect(endpoint, msize: msize, timeout: timeout)
            session = connection
            out.msize = Int(connection.msize)
            let io = (Int(connection.msize) - max(NineP.readReplyOverhead, NineP.writeRequestOverhead)) / 4096 * 4096
            out.io = io
            try connection.attach(fid: 1, aname: export, nuname: 0)
            try connection.walk(fid: 1, newfid: Self.fileFid)
            try connection.lcreate(fid: Self.fileFid, name: "pressure-\(index).dat",
                                   flags: OpenFlags.readWrite | OpenFlags.create | OpenFlags.truncate)
            let pattern = PressurePattern(connection: index, io: io)
            let frames = FrameSender(fd: connection.fd, fid: Self.fileFid, pattern: pattern, msize: Int(connection.msize))
            sender = frames
            try stream(connection, frames, pattern, &out)
            frames.stop()
            _ = frames.thread.join(seconds: 30)
            sender = nil
            try connection.clunk(fid: Self.fileFid)
        } catch let LoadError.connectionLost(text) {
            out.lost = true
            out.failed += session?.inFlight.count ?? 1
            out.error("connection lost: \(sender?.failure ?? text)")
        } catch let LoadError.protocolError(text) {
            out.lost = true
            out.failed += max(1, session?.inFlight.count ?? 1)
            out.error("protocol: \(text)")
        } catch {
            out.lost = true
            out.failed += max(1, session?.inFlight.count ?? 1)
            out.error("protocol: \(error)")
        }
        if let sender, let session {
            // A sender still running must be done with the socket before it is closed.
            _ = shutdown(session.fd, Int32(SHUT_RDWR))
            sender.stop()
            _ = sender.thread.join(seconds: timeout + 5)
        }
        session?.close()
        return out.json(index: index)
    }

    private func stream(_ connection: RawSession, _ sender: FrameSender, _ pattern: PressurePattern, _ out: inout Result) throws {
        var generation = [Int](repeating: 0, count: depth)
        var pending: [UInt16: (slot: Int, kind: Kind, sent: Double)] = [:]
        func send(_ kind: Kind, slot: Int) throws {
            let tag = try connection.register(kind == .write ? .twrite : .tread)
            pending[tag] = (slot, kind, monotonicSeconds())
            sender.put(Outgoing(tag: tag, kind: kind, slot: slot, generation: generation[slot]))
        }
        for slot in 0..<depth { try send(.write, slot: slot) }
        while !pending.isEmpty {
            let (header, _, frame) = try connection.receiveFrame()
            guard let (slot, kind, sent) = pending.removeValue(forKey: header.tag) else {
                throw LoadError.protocolError("reply to tag \(header.tag), not one of ours")
            }
            out.maxLatency = max(out.maxLatency, monotonicSeconds() - sent)
            let going = monotonicSeconds() < deadline
            let response: Response
            do {
                response = try RMessage.decode(frame, msize: connection.msize).response
            } catch {
                throw LoadError.protocolError("undecodable reply to tag \(header.tag): \(error)")
            }
            switch response {
            case let .lerror(code), let .error(_, code):
                out.failed += 1
                out.error("Rlerror \(errnoName(code)) to T\(kind)")
                if going { try send(kind, slot: slot) }
                continue
            case let .write(count) where kind == .write:
                out.requests += 1
                out.bytes += Int(count)
                if Int(count) != pattern.io {
                    out.failed += 1
                    out.error("short write \(count) of \(pattern.io)")
                    if going { try send(.write, slot: slot) }
                } else if going {
                    try send(.read, slot: slot)
                }
            case let .read(data) where kind == .read:
                out.requests += 1
                out.bytes += data.count
                let bad = pattern.differences(data.base, slot: slot, generation: generation[slot])
                if bad > 0 {
                    out.corrupted += bad
                    out.error("slot \(slot) generation \(generation[slot]): \(bad) bytes differ")
                }
                generation[slot] += 1
                if going { try send(.write, slot: slot) }
            default:
                throw LoadError.protocolError("reply \(response.type) to T\(kind)")
            }
        }
        if let failure = sender.failure { throw LoadError.connectionLost(failure) }
    }
}

/// The sending thread of one pressure client: builds each frame in a buffer of its own (the
/// write's payload straight from the pattern) and sends it; on a send error it shuts the
/// socket down, which ends the receiving thread's wait.
final class FrameSender: Sendable {
    /// What both threads touch; a class of its own so that the thread can hold it before
    /// `self` exists.
    private final class Shared: Sendable {
        let queue = Mutex<[PressureClient.Outgoing?]>([])
        let wakeup = DispatchSemaphore(value: 0)
        let failure = Mutex<String?>(nil)
    }

    private let shared = Shared()
    let thread: BackgroundThread

    init(fd: Int32, fid: UInt32, pattern: PressurePattern, msize: Int) {
        let shared = self.shared
        thread = BackgroundThread(name: "sender-\(pattern.connection)") {
            let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: msize, alignment: 16)
            let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: pattern.io, alignment: 16)
            defer { frame.deallocate(); payload.deallocate() }
            while true {
                shared.wakeup.wait()
                // nil (or, never expected, an empty queue): stop.
                let next: PressureClient.Outgoing?? = shared.queue.withLock { $0.isEmpty ? .none : .some($0.removeFirst()) }
                guard case let .some(.some(item)) = next else { return }
                let offset = UInt64(item.slot * pattern.io)
                var writer = WireWriter(frame)
                let request: TRequest
                switch item.kind {
                case .write:
                    pattern.fill(payload, slot: item.slot, generation: item.generation)
                    request = .write(fid: fid, offset: offset, data: UnsafeRawBufferPointer(payload))
                case .read:
                    request = .read(fid: fid, offset: offset, count: UInt32(pattern.io))
                }
                do {
                    let length = try request.encode(tag: item.tag, into: &writer)
                    try sendAll(fd, UnsafeRawBufferPointer(rebasing: frame[0..<length]))
                } catch {
                    shared.failure.withLock { $0 = "send T\(item.kind): \(error)" }
                    _ = shutdown(fd, Int32(SHUT_RDWR))
                    return
                }
            }
        }
    }

    func put(_ item: PressureClient.Outgoing) {
        shared.queue.withLock { $0.append(item) }
        shared.wakeup.signal()
    }

    func stop() {
        shared.queue.withLock { $0.append(nil) }
        shared.wakeup.signal()
    }

    var failure: String? { shared.failure.withLock { $0 } }
}

/// send() until every byte is out; the socket's SO_SNDTIMEO bounds each wait.
private func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
    var done = 0
    while done < bytes.count {
        let n = send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
        if n > 0 {
            done += n
        } else if n < 0 && errno == EINTR {
            continue
        } else {
            throw LoadError.connectionLost(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
                ? "the server took nothing within the timeout" : String(cString: strerror(errno)))
        }
    }
}
