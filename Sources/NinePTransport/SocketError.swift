import Glibc

/// A failed socket call, with the call's name and errno for a message that says what to do.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let errno: Int32
    public let address: String
    /// Says what is wrong in words when errno alone would mislead (e.g. a live server's unix
    /// socket: no call failed, the listener refused to take it over).
    public let reason: String?

    public init(_ operation: String, errno: Int32, address: String) {
        self.operation = operation
        self.errno = errno
        self.address = address
        self.reason = nil
    }

    /// A refusal explained by `reason` ("ADDRESS: REASON"); `errno` classifies it.
    public init(address: String, errno: Int32, reason: String) {
        self.operation = ""
        self.errno = errno
        self.address = address
        self.reason = reason
    }

    public var description: String {
        if let reason { return "\(address): \(reason)" }
        let reason = String(cString: strerror(errno))
        var hint = ""
        if errno == EADDRINUSE { hint = " (another server is listening there; pick another port with --listen)" }
        if errno == EACCES { hint = " (ports below 1024 need root; or check the socket directory's permissions)" }
        return "\(operation) \(address): \(reason)\(hint)"
    }
}
