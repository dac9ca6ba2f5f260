import CNinePShims
import Glibc

/// Descriptors that arrived with stream bytes (SCM_RIGHTS), oldest first. A reader that reads
/// frames in order hands the first one to the reply that carries one (localio's Rversion and
/// Rlocalgrant, docs/LOCALIO.md). At most `capacity` are held: any that arrive beyond it are
/// closed at once, so a peer cannot fill the process's descriptor table through us.
///
/// Not Sendable: one reader thread owns it.
public final class DescriptorInbox {
    public let capacity: Int
    private let held: UnsafeMutablePointer<Int32>
    public private(set) var count = 0

    public init(capacity: Int = 4) {
        self.capacity = max(1, capacity)
        held = .allocate(capacity: self.capacity)
    }

    deinit {
        closeAll()
        held.deallocate()
    }

    /// Keeps `descriptor` (closes it when the inbox is full).
    public func keep(_ descriptor: Int32) {
        guard count < capacity else {
            close(descriptor)
            return
        }
        held[count] = descriptor
        count += 1
    }

    /// The oldest descriptor held, now the caller's to close; nil when none.
    public func take() -> Int32? {
        guard count > 0 else { return nil }
        let first = held[0]
        count -= 1
        if count > 0 { (held).update(from: held + 1, count: count) }
        return first
    }

    /// Closes every descriptor held (a frame that carries none came with some: surplus).
    public func closeAll() {
        for index in 0..<count { close(held[index]) }
        count = 0
    }
}

extension SocketIO {
    /// Reads exactly `buffer.count` bytes with recvmsg, keeping every descriptor that comes
    /// with them in `inbox` (close-on-exec). A plain recv would make the kernel drop them.
    /// Outcomes as `readFully(_:into:)` (SO_RCVTIMEO gives `.stalled`).
    public static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, collecting inbox: DescriptorInbox) -> Outcome {
        var done = 0
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: 8) { scratch in
            while done < buffer.count {
                var count: Int32 = 0
                let n = ninep_receive_with_descriptors(fd, buffer.baseAddress! + done, buffer.count - done, 0, scratch.baseAddress!, 8, &count)
                for index in 0..<Int(count) { inbox.keep(scratch[index]) }
                if n > 0 {
                    done += n
                } else if n == 0 {
                    return .closed
                } else if errno == EAGAIN || errno == EWOULDBLOCK {
                    return .stalled
                } else if errno != EINTR {
                    return .closed
                }
            }
            return .complete
        }
    }

    /// Writes all of `bytes` with `descriptor` attached to the first byte (SCM_RIGHTS); the
    /// caller keeps its own copy of the descriptor and closes it. Outcomes as `writeFully`.
    public static func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, attaching descriptor: Int32) -> Outcome {
        guard bytes.count > 0 else { return .complete }
        while true {
            let n = ninep_send_with_descriptor(fd, bytes.baseAddress!, bytes.count, descriptor, 0)
            if n > 0 {
                return n == bytes.count ? .complete : writeFully(fd, UnsafeRawBufferPointer(rebasing: bytes[n...]))
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .stalled }
            return .closed
        }
    }

    /// What the socket takes now (MSG_DONTWAIT), with `descriptor` attached to the first byte:
    /// the bytes written (0: none, and the descriptor was not sent either), -1 when the peer is gone.
    public static func writeWithoutWaiting(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, attaching descriptor: Int32) -> Int {
        guard bytes.count > 0 else { return 0 }
        let n = ninep_send_with_descriptor(fd, bytes.baseAddress!, bytes.count, descriptor, Int32(MSG_DONTWAIT))
        if n < 0 { return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1 }
        if n == bytes.count { return n }
        let rest = writeWithoutWaiting(fd, UnsafeRawBufferPointer(rebasing: bytes[n...]))
        return rest < 0 ? -1 : n + rest
    }
}
