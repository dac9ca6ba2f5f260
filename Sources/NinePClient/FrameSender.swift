import Glibc
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
    // with `mutex` held, except that the sender thread reads the head frame's bytes outside the
    // lock: the head entry is removed only by that thread, and its bytes belong to a slot that
    // stays reserved until the frame is sent and settled.
    private let fd: Int32
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
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
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
        ring = .allocate(capacity: capacity)
        ring.initialize(repeating: nil, count: capacity)
        DaemonThread.start(name: "9p-sender") { [self] in drain() }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
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
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
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
        pthread_cond_signal(condition)
        return .queued
    }

    /// Stops the sender thread (after shutdown of the socket, writes fail anyway).
    func close() {
        pthread_mutex_lock(mutex)
        closed = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// The sender thread: writes the head frame as the socket drains.
    private func drain() {
        var writable = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        while true {
            pthread_mutex_lock(mutex)
            while count == 0 && !closed { pthread_cond_wait(condition, mutex) }
            if closed {
                pthread_mutex_unlock(mutex)
                return
            }
            let frame = ring[head]!
            var offset = headOffset
            pthread_mutex_unlock(mutex)

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
                pthread_mutex_lock(mutex)
                closed = true
                pthread_mutex_unlock(mutex)
                onFailure()
                return
            }
            pthread_mutex_lock(mutex)
            ring[head] = nil
            head = (head + 1) % capacity
            count -= 1
            headOffset = 0
            pthread_mutex_unlock(mutex)
            onSent(frame)
        }
    }

    private var isClosed: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return closed
    }
}
