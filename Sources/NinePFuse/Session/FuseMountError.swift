import Glibc

/// Why a mount could not be set up or served; each says what to do about it.
public struct FuseMountError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var errno: Int32

    public init(_ message: String, errno: Int32 = 0) {
        self.message = message
        self.errno = errno
    }

    public static func system(_ what: String, _ code: Int32, hint: String? = nil) -> FuseMountError {
        var text = "\(what): \(String(cString: strerror(code)))"
        if let hint { text += " (\(hint))" }
        return FuseMountError(text, errno: code)
    }

    public var description: String { message }
}
