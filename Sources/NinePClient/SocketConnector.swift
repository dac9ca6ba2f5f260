import CNinePShims
import Glibc
import NinePTransport

/// Opens a stream socket to a `tcp:` or `unix:` address, giving up after `timeout`.
enum SocketConnector {
    static func connect(to address: ListenAddress, timeout: Duration) throws(NinePError) -> Int32 {
        switch address {
        case let .unix(path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw NinePError(.connectionLost, errno: errno, operation: .connect, path: address.description) }
            var addr = unixSocketAddress(path)
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connectWithin(timeout, fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0 else {
                let e = errno
                close(fd)
                throw NinePError(.connectionLost, errno: e, operation: .connect, path: address.description)
            }
            return fd
        case let .tcp(host, port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_NUMERICSERV
            var result: UnsafeMutablePointer<addrinfo>?
            let resolved = getaddrinfo(host, String(port), &hints, &result)
            guard resolved == 0, let first = result else {
                throw NinePError(.connectionLost, errno: EHOSTUNREACH, operation: .connect, path: address.description,
                                 message: resolutionFailure(host: host, code: resolved))
            }
            defer { freeaddrinfo(result) }
            var lastErrno = ECONNREFUSED
            var entry: UnsafeMutablePointer<addrinfo>? = first
            while let info = entry {
                entry = info.pointee.ai_next
                let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard fd >= 0 else { lastErrno = errno; continue }
                if connectWithin(timeout, fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                    _ = ninep_set_nodelay(fd)
                    return fd
                }
                lastErrno = errno
                close(fd)
            }
            // No answer within the limit (a host that drops SYNs) is a timeout, not a refusal.
            throw NinePError(lastErrno == ETIMEDOUT ? .timedOut : .connectionLost, errno: lastErrno, operation: .connect, path: address.description)
        }
    }

    /// Why `host` did not resolve, in words: "unknown host" only when the name server said
    /// there is no such name, not when it could not be asked.
    static func resolutionFailure(host: String, code: Int32) -> String {
        let detail = String(cString: gai_strerror(code))
        switch code {
        // EAI_NODATA (-5) and EAI_ADDRFAMILY (-9) are glibc extensions Swift's Glibc does not
        // export: a name that exists but has no address (of that family).
        case EAI_NONAME, EAI_FAIL, -5, -9:
            return "unknown host '\(host)' (\(detail)): check the name, or give an address such as 127.0.0.1"
        case EAI_AGAIN:
            return "cannot resolve host '\(host)' now (\(detail)): the name server did not answer; try again or give an address"
        default:
            return "cannot resolve host '\(host)': \(detail)"
        }
    }

    /// connect(2) that waits at most `timeout` (non-blocking connect, then poll); the socket
    /// is blocking again on return. 0 or -1 with errno set.
    private static func connectWithin(_ timeout: Duration, _ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        if Glibc.connect(fd, address, length) == 0 { return 0 }
        guard errno == EINPROGRESS || errno == EINTR else { return -1 }
        var pending = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let (seconds, attoseconds) = timeout.components
        let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        let ready = poll(&pending, 1, milliseconds)
        if ready == 0 {
            errno = ETIMEDOUT
            return -1
        }
        guard ready > 0 else { return -1 }
        var error: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
        if error != 0 {
            errno = error
            return -1
        }
        return 0
    }
}
