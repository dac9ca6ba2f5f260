import Glibc

/// Blocking whole-buffer reads and writes on a stream socket.
public enum SocketIO {
    public enum Outcome: Equatable {
        case complete
        /// The peer closed (or reset) the connection.
        case closed
    }

    /// Reads exactly `buffer.count` bytes.
    public static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Outcome {
        var done = 0
        while done < buffer.count {
            let n = recv(fd, buffer.baseAddress! + done, buffer.count - done, 0)
            if n > 0 {
                done += n
            } else if n == 0 {
                return .closed
            } else if errno != EINTR {
                return .closed
            }
        }
        return .complete
    }

    /// Writes all of `bytes`; MSG_NOSIGNAL so a vanished peer is an error, not SIGPIPE.
    public static func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Outcome {
        var done = 0
        while done < bytes.count {
            let n = send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            if n >= 0 {
                done += n
            } else if errno != EINTR {
                return .closed
            }
        }
        return .complete
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
