import CNinePShims
import Glibc

/// A listening socket handed to the process already bound (systemd socket activation, or any
/// supervisor that passes descriptors): what it is and where it listens, checked before the
/// server relies on it.
public enum InheritedSocket {
    /// The address `fd` listens on, after checking that it is a stream socket in the listening
    /// state; the error says which descriptor is wrong and how.
    public static func listeningAddress(of fd: Int32) throws(SocketError) -> (address: ListenAddress, port: UInt16) {
        let name = "inherited descriptor \(fd)"
        var value: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &size) == 0 else {
            let e = errno
            throw SocketError(address: name, errno: e, reason: e == ENOTSOCK
                ? "is not a socket; the unit's .socket file must use ListenStream= (a stream socket)"
                : "cannot be inspected (\(String(cString: strerror(e))))")
        }
        guard value == Int32(SOCK_STREAM.rawValue) else {
            throw SocketError(address: name, errno: EPROTOTYPE, reason: "is not a stream socket; 9P needs ListenStream=, not ListenDatagram= or ListenSequentialPacket=")
        }
        size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &size) == 0, value != 0 else {
            throw SocketError(address: name, errno: EINVAL, reason: "is a stream socket that is not listening (SO_ACCEPTCONN is 0); with Accept=yes systemd passes connections, ninepd needs Accept=no")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw SocketError("getsockname", errno: errno, address: name) }
        switch Int32(storage.ss_family) {
        case AF_INET, AF_INET6:
            // "host:port" or "[v6]:port", as the listener prints peers.
            let printed = Listener.describe(storage, unixPath: .unix(path: ""))
            let colon = printed.lastIndex(of: ":")!
            var host = String(printed[..<colon])
            if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
            let port = UInt16(printed[printed.index(after: colon)...]) ?? 0
            return (.tcp(host: host, port: port), port)
        case AF_UNIX:
            let path = withUnsafeBytes(of: &storage) { raw -> String in
                let offset = MemoryLayout<sa_family_t>.size
                let bytes = raw[offset..<min(raw.count, Int(length))]
                if bytes.first == 0 {
                    // An abstract name: '@' and the rest, as systemd writes it.
                    return "@" + String(decoding: bytes.dropFirst().prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                return String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            return (.unix(path: path.isEmpty ? "(unnamed)" : path), 0)
        default:
            throw SocketError(address: name, errno: EAFNOSUPPORT, reason: "listens on an address family ninepd does not serve (only TCP and unix sockets)")
        }
    }

    /// Makes an inherited descriptor fit the accept loop: blocking (accept waits in poll, not
    /// in a spin) and close-on-exec (it is ours now, not a child's).
    static func prepare(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 && flags & O_NONBLOCK != 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        let descriptorFlags = fcntl(fd, F_GETFD)
        if descriptorFlags >= 0 { _ = fcntl(fd, F_SETFD, descriptorFlags | FD_CLOEXEC) }
    }
}
