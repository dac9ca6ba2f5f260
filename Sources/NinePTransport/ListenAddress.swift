import Glibc

/// Where a server listens or a client connects: `tcp:HOST:PORT` or `unix:PATH`.
public enum ListenAddress: Equatable, Sendable, CustomStringConvertible {
    case tcp(host: String, port: UInt16)
    case unix(path: String)

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses `tcp:HOST:PORT` (IPv6 hosts in brackets: `tcp:[::1]:5640`) or `unix:PATH`.
    public init(parsing text: String) throws(ParseError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw ParseError(description: "'\(text)': unix: needs a socket path, e.g. unix:/run/ninepd.sock") }
            guard path.utf8.count < 108 else { throw ParseError(description: "'\(text)': a unix socket path must be shorter than 108 bytes") }
            self = .unix(path: path)
            return
        }
        guard text.hasPrefix("tcp:") else {
            throw ParseError(description: "'\(text)': an address is tcp:HOST:PORT or unix:PATH")
        }
        let rest = text.dropFirst(4)
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest[rest.index(after: close)...].hasPrefix(":") else {
                throw ParseError(description: "'\(text)': an IPv6 address is written tcp:[ADDR]:PORT")
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            portText = rest[rest.index(close, offsetBy: 2)...]
        } else {
            guard let colon = rest.lastIndex(of: ":") else {
                throw ParseError(description: "'\(text)': missing port, e.g. tcp:127.0.0.1:5640")
            }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard !host.isEmpty else { throw ParseError(description: "'\(text)': missing host, e.g. tcp:127.0.0.1:5640") }
        guard let port = UInt16(portText) else {
            throw ParseError(description: "'\(text)': '\(portText)' is not a port number (0-65535)")
        }
        self = .tcp(host: String(host), port: port)
    }

    public var description: String {
        switch self {
        case let .tcp(host, port): host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        case let .unix(path): "unix:\(path)"
        }
    }

    public var isLoopback: Bool {
        switch self {
        case let .tcp(host, _): host == "localhost" || host.hasPrefix("127.") || host == "::1"
        case .unix: true
        }
    }
}

/// The sockaddr_un for a unix socket path (bind and connect); a path longer than sun_path holds
/// is cut at its size less the terminating NUL.
public func unixSocketAddress(_ path: String) -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
    }
    return address
}
