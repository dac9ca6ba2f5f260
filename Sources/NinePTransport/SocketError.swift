import Glibc

/// A failed socket call, with the call's name and errno for a message that says what to do.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let errno: Int32
    public let address: String

    public init(_ operation: String, errno: Int32, address: String) {
        self.operation = operation
        self.errno = errno
        self.address = address
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        var hint = ""
        if errno == EADDRINUSE { hint = " (another server is listening there; pick another port with --listen)" }
        if errno == EACCES { hint = " (ports below 1024 need root; or check the socket directory's permissions)" }
        return "\(operation) \(address): \(reason)\(hint)"
    }
}
