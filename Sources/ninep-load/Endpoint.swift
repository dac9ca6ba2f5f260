import CNinePShims
import Glibc
import NinePTransport

/// Where the server listens: tcp:HOST:PORT on 127.0.0.0/8 only, or unix:PATH.
struct Endpoint: CustomStringConvertible {
    let address: ListenAddress

    init(_ text: String) throws {
        let address: ListenAddress
        do {
            address = try ListenAddress(parsing: text)
        } catch {
            throw LoadError.protocolError("address \(text): \(error)")
        }
        if case .tcp = address, !address.isLoopback {
            throw LoadError.protocolError("only loopback addresses (127.0.0.0/8) are allowed: \(text)")
        }
        self.address = address
    }

    var description: String { address.description }

    /// A connected stream socket whose sends and receives give up after `timeout` seconds
    /// (SO_SNDTIMEO/SO_RCVTIMEO: connect honours the send timeout).
    func connect(timeout: Double) throws -> Int32 {
        let family: Int32
        switch address {
        case .tcp: family = AF_INET
        case .unix: family = AF_UNIX
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LoadError.connectionLost("socket: \(String(cString: strerror(errno)))") }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let rc: Int32
        switch address {
        case let .tcp(host, port):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &sin.sin_addr) == 1 else {
                close(fd)
                throw LoadError.protocolError("\(host) is not an IPv4 address")
            }
            rc = withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case let .unix(path):
            var sun = unixSocketAddress(path)
            rc = withUnsafePointer(to: &sun) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw LoadError.connectionLost("connect to \(self): \(String(cString: strerror(e)))")
        }
        if case .tcp = address { _ = ninep_set_nodelay(fd) }
        return fd
    }
}
