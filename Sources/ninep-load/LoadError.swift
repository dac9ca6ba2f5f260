import Glibc
import NinePWire

/// What can go wrong on a raw session, in the three kinds the load scripts tell apart: the
/// server refused (Rlerror with an errno), the server made no sense, or the connection is gone
/// (refused, reset, closed, or no reply within the timeout).
enum LoadError: Error, CustomStringConvertible {
    case rlerror(errno: UInt32, request: MessageType?)
    case protocolError(String)
    case connectionLost(String)

    var description: String {
        switch self {
        case let .rlerror(code, request):
            let to = request.map { " to \($0.displayName)" } ?? ""
            return "Rlerror \(errnoName(code)) (\(code))\(to): \(String(cString: strerror(Int32(code))))"
        case let .protocolError(text): return text
        case let .connectionLost(text): return text
        }
    }
}

/// "ENOMEM" for 12, as Python's errno.errorcode (the scripts' reports used those names; Linux
/// values, the ones 9P2000.L carries).
func errnoName(_ code: UInt32) -> String {
    errnoNames[code] ?? String(code)
}

private let errnoNames: [UInt32: String] = [
    1: "EPERM", 2: "ENOENT", 4: "EINTR", 5: "EIO", 7: "E2BIG", 9: "EBADF", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL", 23: "ENFILE", 24: "EMFILE", 27: "EFBIG", 28: "ENOSPC", 30: "EROFS", 34: "ERANGE", 38: "ENOSYS", 39: "ENOTEMPTY", 40: "ELOOP", 61: "ENODATA", 71: "EPROTO", 90: "EMSGSIZE", 95: "EOPNOTSUPP", 104: "ECONNRESET", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 116: "ESTALE", 122: "EDQUOT", 36: "ENAMETOOLONG",
]

extension MessageType {
    /// "TATTACH", as the Python client's names.
    var displayName: String { String(describing: self).uppercased() }
}
