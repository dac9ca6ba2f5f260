import Glibc
import NinePMemory
import NinePTransport
import NinePWire

/// Puts frames on the socket in order without ever blocking the caller: a frame is written
/// directly (non-blocking) when nothing is queued ahead of it; whatever the socket does not take
/// at once is queued and written by the sender thread as the server reads. So a caller (or the
/// housekeeper) never waits for a server that has stopped reading: cancellation and timeouts
/// still return control, and the rest of the frame follows later, keeping the stream whole.
///
/// The queue is a fixed ring with room for every slot, because each slot has at most one frame
/// on its way.
final class FrameSender: @unchecked Sendable {
    // @unchecked Sendable: `ring`, `head`, `count`, `headOffset` and `closed` are touched only
    // with `lock` held, except that the sender thread reads the head frame's bytes outside the
    // lock: the head entry is removed only by that thread, and its bytes belong to a slot that
    // stays reserved until the frame is sent and settled.
    private let fd: Int32
    private let lock = ConditionLock()
    private let ring: UnsafeMutablePointer<SlotFrame?>
    private let capacity: Int
    private var head = 0
    private var count = 0
    /// Bytes of the head frame already written.
    private var headOffset = 0
    private var closed = false
    /// Called (on the sender thread) when a queued frame is completely written.
    private let onSent: @Sendable (SlotFrame) -> Void
    private let onFailure: @Sendable () -> Void

    init(fd: Int32, capacity: Int, onSent: @escaping @Sendable (SlotFrame) -> Void, onFailure: @escaping @Sendable () -> Void) {
        self.fd = fd
        self.capacity = capacity
        self.onSent = onSent
        self.onFailure = onFailure
        ring = .allocate(capacity: capacity)
        ring.initialize(repeating: nil, count: capacity)
        DaemonThread.start(name: "9p-sender") { [self] in drain() }
    }

    deinit {
        ring.deallocate()
    }

    enum Outcome {
        /// Entirely on the socket now.
        case sent
        /// Queued (in part or whole): `onSent` reports it when done.
        case queued
        case failed
    }

    /// Writes `frame` now if the socket takes all of it, else queues what is left.
    func submit(_ frame: SlotFrame) -> Outcome {
        lock.lock()
        defer { lock.unlock() }
        if closed { return .failed }
        var written = 0
        if count == 0 {
            while written < frame.bytes.count {
                let n = send(fd, frame.bytes.baseAddress! + written, frame.bytes.count - written, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if n > 0 {
                    written += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    break
                } else {
                    closed = true
                    return .failed
                }
            }
            if written == frame.bytes.count { return .sent }
        }
        precondition(count < capacity, "more frames queued than slots")
        ring[(head + count) % capacity] = frame
        if count == 0 { headOffset = written }
        count += 1
        lock.signal()
        return .queued
    }

    /// Stops the sender thread (after shutdown of the socket, writes fail anyway).
    func close() {
        lock.lock()
        closed = true
        lock.signal()
        lock.unlock()
    }

    /// The sender thread: writes the head frame as the socket drains.
    private func drain() {
        var writable = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        while true {
            lock.lock()
            while count == 0 && !closed { lock.wait() }
            if closed {
                lock.unlock()
                return
            }
            let frame = ring[head]!
            var offset = headOffset
            lock.unlock()

            var failed = false
            while offset < frame.bytes.count {
                let n = send(fd, frame.bytes.baseAddress! + offset, frame.bytes.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if n > 0 {
                    offset += n
                } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    writable.revents = 0
                    _ = poll(&writable, 1, 1000)
                } else {
                    failed = true
                    break
                }
                if isClosed { return }
            }
            if failed {
                lock.lock()
                closed = true
                lock.unlock()
                onFailure()
                return
            }
            lock.lock()
            ring[head] = nil
            head = (head + 1) % capacity
            count -= 1
            headOffset = 0
            lock.unlock()
            onSent(frame)
        }
    }

    private var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closed
    }
}
