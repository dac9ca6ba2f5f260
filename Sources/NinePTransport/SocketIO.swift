import CNinePShims
import Glibc

/// Blocking whole-buffer reads and writes on a stream socket.
public enum SocketIO {
    public enum Outcome: Equatable {
        case complete
        /// The peer closed (or reset) the connection.
        case closed
        /// The peer sent nothing (or took nothing) for longer than the time allowed.
        case stalled
    }

    /// Reads exactly `buffer.count` bytes, the first of which may take as long as the peer
    /// likes (an idle connection is never dropped); after that, a pause of more than
    /// `stallMilliseconds` without a byte ends the read with `.stalled` (a peer that sent part
    /// of a frame and stopped). 0: no limit.
    public static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, stallMilliseconds: Int, firstByteWaits: Bool) -> Outcome {
        if stallMilliseconds <= 0 { return readFully(fd, into: buffer) }
        var done = 0
        var waitsForever = firstByteWaits
        while done < buffer.count {
            // The bytes are usually there already: recv first, poll only when they are not
            // (one system call in the common case, as a plain blocking read).
            let n = recv(fd, buffer.baseAddress! + done, buffer.count - done, waitsForever ? 0 : Int32(MSG_DONTWAIT))
            if n > 0 {
                done += n
                waitsForever = false
                continue
            }
            if n == 0 { return .closed }
            if errno == EINTR { continue }
            guard errno == EAGAIN || errno == EWOULDBLOCK, !waitsForever else { return .closed }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(clamping: stallMilliseconds))
            if ready == 0 { return .stalled }
            if ready < 0 && errno != EINTR { return .closed }
        }
        return .complete
    }


    /// Reads exactly `buffer.count` bytes. On a socket with a receive timeout (SO_RCVTIMEO), a
    /// receive that gets no byte for that long ends the read with `.stalled`.
    public static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Outcome {
        var done = 0
        while done < buffer.count {
            let n = recv(fd, buffer.baseAddress! + done, buffer.count - done, 0)
            if n > 0 {
                done += n
            } else if n == 0 {
                return .closed
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                return .stalled
            } else if errno != EINTR {
                return .closed  // ECONNRESET and friends
            }
        }
        return .complete
    }

    /// Writes all of `bytes`; MSG_NOSIGNAL so a vanished peer is an error, not SIGPIPE. On a
    /// socket with a send timeout (SO_SNDTIMEO), a send that moves no byte for that long ends
    /// the write with `.stalled`; any progress starts the timeout again.
    public static func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Outcome {
        var done = 0
        while done < bytes.count {
            let n = send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            if n >= 0 {
                done += n
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                return .stalled
            } else if errno != EINTR {
                return .closed
            }
        }
        return .complete
    }

    /// Sets the send timeout that `writeFully` reports as `.stalled` (0: none).
    public static func setSendTimeout(_ fd: Int32, milliseconds: Int) {
        var timeout = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes what the socket takes now (MSG_DONTWAIT): the number of bytes written, all of
    /// `bytes` or fewer when the socket is full; -1 when the peer is gone.
    public static func writeWithoutWaiting(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
        var done = 0
        while done < bytes.count {
            let n = send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if n >= 0 {
                done += n
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                return done
            } else if errno != EINTR {
                return -1
            }
        }
        return done
    }
}
