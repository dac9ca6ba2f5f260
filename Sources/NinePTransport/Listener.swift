import CNinePShims
import Glibc

/// A listening socket (TCP or unix). `accept()` blocks until a client connects or the
/// listener is closed.
public final class Listener: @unchecked Sendable {
    // @unchecked Sendable: `fd` and `wake` are immutable; close() only calls shutdown/unlink or
    // writes to the eventfd, which are safe while another thread is blocked in accept or poll
    // on them.
    public let address: ListenAddress
    public let fd: Int32
    /// The port actually bound (useful with port 0).
    public let boundPort: UInt16
    /// For a socket handed in already listening (`init(adopting:)`): an eventfd that `close()`
    /// signals to wake the accept loop. Shutting such a socket down would also kill the
    /// supervisor's copy (one open file description), and systemd could then not start ninepd
    /// again on the next connection. -1 for sockets ninepd bound itself.
    private let wake: Int32

    /// Takes over `fd`, a socket already bound and listening (systemd socket activation). The
    /// socket is checked (`InheritedSocket.listeningAddress(of:)`); `close()` stops accepting
    /// without shutting it down or unlinking its path, which belong to the supervisor.
    public init(adopting fd: Int32) throws(SocketError) {
        let (address, port) = try InheritedSocket.listeningAddress(of: fd)
        InheritedSocket.prepare(fd)
        let wake = ninep_eventfd()
        guard wake >= 0 else { throw SocketError("eventfd", errno: errno, address: address.description) }
        self.address = address
        self.fd = fd
        self.boundPort = port
        self.wake = wake
    }

    public init(_ address: ListenAddress, backlog: Int32 = 128, socketMode: mode_t? = nil) throws(SocketError) {
        self.address = address
        self.wake = -1
        switch address {
        case let .unix(path):
            // Replace a stale socket left by a previous run, but never a live server's socket
            // nor a file of another kind.
            switch UnixSocketOccupant.at(path) {
            case .live:
                throw SocketError(address: address.description, errno: EADDRINUSE,
                                  reason: "another server is accepting connections there; stop it or choose another path")
            case .notASocket:
                throw SocketError(address: address.description, errno: EEXIST,
                                  reason: "a file that is not a socket is in the way; remove it or choose another path")
            case .stale:
                unlink(path)
            case .nothing, .unknown:
                break
            }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SocketError("socket", errno: errno, address: address.description) }
            var addr = unixSocketAddress(path)
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0 else {
                let e = errno
                Glibc.close(fd)
                throw SocketError("bind", errno: e, address: address.description)
            }
            if let socketMode { _ = chmod(path, socketMode) }
            guard listen(fd, backlog) == 0 else {
                let e = errno
                Glibc.close(fd)
                throw SocketError("listen", errno: e, address: address.description)
            }
            self.fd = fd
            self.boundPort = 0
        case let .tcp(host, port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
            var result: UnsafeMutablePointer<addrinfo>?
            let gai = getaddrinfo(host == "*" ? nil : host, String(port), &hints, &result)
            guard gai == 0, let info = result else {
                throw SocketError("resolve", errno: EINVAL, address: address.description)
            }
            defer { freeaddrinfo(result) }
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SocketError("socket", errno: errno, address: address.description) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
                let e = errno
                Glibc.close(fd)
                throw SocketError("bind", errno: e, address: address.description)
            }
            guard listen(fd, backlog) == 0 else {
                let e = errno
                Glibc.close(fd)
                throw SocketError("listen", errno: e, address: address.description)
            }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            let family = Int32(storage.ss_family)
            let bound: UInt16 = withUnsafePointer(to: &storage) { pointer in
                if family == AF_INET6 {
                    return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                }
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            }
            self.fd = fd
            self.boundPort = bound
        }
    }

    /// The next connection's descriptor and its peer's address, or nil once closed. The
    /// address stays raw until someone prints it: accepting allocates nothing.
    public func acceptPeer() -> (fd: Int32, peer: PeerAddress)? {
        while true {
            if wake >= 0 && !waitForConnectionOrWake() { return nil }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { ninep_accept4(fd, $0, &length) }
            }
            if client >= 0 {
                if case .tcp = address {
                    _ = ninep_set_nodelay(client)
                    Self.enableKeepalive(client)
                }
                return (client, PeerAddress(storage: storage, listenAddress: address))
            }
            let e = errno
            if e == EINTR || e == ECONNABORTED || e == EPROTO { continue }
            if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM {
                // Out of descriptors or memory: back off instead of spinning; the client waits
                // in the backlog.
                usleep(50_000)
                continue
            }
            return nil
        }
    }

    /// TCP keepalive on accepted connections. A 9P client (the kernel's mount above all) may
    /// stay silent for hours, and a client host that vanishes without a FIN (powered off, cable
    /// cut, VM destroyed) would otherwise hold its connection slot, fids and descriptors until
    /// ninepd restarts, and count against --max-connections. The kernel defaults (2 h idle, then
    /// 9 probes 75 s apart) take over 2 hours to notice; these notice within 2 minutes
    /// (60 s idle + 6 probes x 10 s) while costing an idle client one small packet a minute.
    /// A live but idle or stopped (^Z) client answers probes in its kernel, so it is never cut.
    static let keepaliveIdleSeconds: Int32 = 60
    static let keepaliveIntervalSeconds: Int32 = 10
    static let keepaliveProbes: Int32 = 6

    /// Best effort: a socket that refuses an option is served anyway.
    static func enableKeepalive(_ fd: Int32) {
        let size = socklen_t(MemoryLayout<Int32>.size)
        var on: Int32 = 1
        var idle = keepaliveIdleSeconds
        var interval = keepaliveIntervalSeconds
        var probes = keepaliveProbes
        _ = setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, size)
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &idle, size)
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &interval, size)
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, &probes, size)
    }

    /// For an adopted socket: waits until a connection is pending (true) or `close()` was
    /// called (false).
    private func waitForConnectionOrWake() -> Bool {
        var fds = (pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0))
        while true {
            let ready = withUnsafeMutablePointer(to: &fds) {
                $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, 2, -1) }
            }
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 || fds.1.revents != 0 { return false }
            if fds.0.revents != 0 { return true }
        }
    }

    deinit {
        Glibc.close(fd)
        if wake >= 0 { Glibc.close(wake) }
    }

    /// Stops accept(); wakes a thread blocked in it.
    public func close() {
        if wake >= 0 {
            var one: UInt64 = 1
            _ = Glibc.write(wake, &one, 8)
            return
        }
        _ = shutdown(fd, Int32(SHUT_RDWR))
        if case let .unix(path) = address { unlink(path) }
    }

    static func describe(_ storage: sockaddr_storage, unixPath: ListenAddress) -> String {
        var copy = storage
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &copy) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var a = sin.pointee.sin_addr
                    inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count))
                    return "\(String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)):\(UInt16(bigEndian: sin.pointee.sin_port))"
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &copy) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                    var a = sin.pointee.sin6_addr
                    inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count))
                    return "[\(String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))]:\(UInt16(bigEndian: sin.pointee.sin6_port))"
                }
            }
        default:
            return unixPath.description
        }
    }
}

/// A connected peer's address as accept() returned it; printed only when logged.
public struct PeerAddress: Sendable, CustomStringConvertible {
    // sockaddr_storage is plain bytes; it is copied, never shared.
    nonisolated(unsafe) var storage: sockaddr_storage
    let listenAddress: ListenAddress

    public init(storage: sockaddr_storage, listenAddress: ListenAddress) {
        self.storage = storage
        self.listenAddress = listenAddress
    }

    /// A placeholder for a connection slot not in use.
    public static let none = PeerAddress(storage: sockaddr_storage(), listenAddress: .unix(path: "(none)"))

    public var description: String { Listener.describe(storage, unixPath: listenAddress) }
}
