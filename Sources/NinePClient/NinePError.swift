import Glibc
import NinePWire

/// Why a client call failed: the errno (Linux numbering, as 9P2000.L carries it), the 9P
/// operation that failed and, when the call named one, the path. Failures that are not the
/// server's answer get an errno too, so callers can treat every failure alike:
/// a lost connection is ECONNRESET, a call that ran out of time ETIMEDOUT, a reply that breaks
/// the protocol EPROTO.
public struct NinePError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The server answered Rlerror.
        case server
        /// The connection closed (or was closed) before the reply came.
        case connectionLost
        /// The per-call timeout passed; a Tflush was sent.
        case timedOut
        /// The reply did not fit the request (wrong type, malformed).
        case protocolViolation
        /// Refused by the client before anything was sent (bad name, too long).
        case invalidArgument
    }

    public var kind: Kind
    public var errno: Int32
    public var operation: NinePOperation
    public var path: String?
    /// The server's own words, when it sent any (9P2000.u's Rerror carries a message).
    public var message: String?

    public init(_ kind: Kind, errno: Int32, operation: NinePOperation, path: String? = nil, message: String? = nil) {
        self.kind = kind
        self.errno = errno
        self.operation = operation
        self.path = path
        self.message = message
    }

    static func server(_ errno: UInt32, _ operation: NinePOperation) -> NinePError {
        NinePError(.server, errno: Int32(truncatingIfNeeded: errno), operation: operation)
    }

    /// The failure a server reported: Rlerror, or 9P2000.u's Rerror from servers that speak
    /// it (message and errno; an errno of 0, which a server without one may send, is EIO).
    /// nil for any other reply. Allocates only for Rerror's message, on the error path.
    static func reported(by response: Response, _ operation: NinePOperation) -> NinePError? {
        switch response {
        case let .lerror(code):
            return .server(code, operation)
        case let .error(ename, code):
            return NinePError(.server, errno: code == 0 ? EIO : Int32(truncatingIfNeeded: code), operation: operation, message: ename.makeString())
        default:
            return nil
        }
    }

    static func connectionLost(_ operation: NinePOperation) -> NinePError {
        NinePError(.connectionLost, errno: ECONNRESET, operation: operation)
    }

    static func timedOut(_ operation: NinePOperation) -> NinePError {
        NinePError(.timedOut, errno: ETIMEDOUT, operation: operation)
    }

    static func protocolViolation(_ operation: NinePOperation) -> NinePError {
        NinePError(.protocolViolation, errno: EPROTO, operation: operation)
    }

    /// The same error, naming the path the caller asked about.
    func at(_ path: String) -> NinePError {
        var copy = self
        copy.path = path
        return copy
    }

    /// The server's message if it sent one, else the C library's text for the errno ("No
    /// such file or directory").
    public var reason: String {
        // The server's words (Rerror), or the client's own for a failure errno cannot say
        // (an unknown host).
        if let message, !message.isEmpty { return message }
        switch kind {
        case .connectionLost where operation != .connect: return "connection to the server lost"
        case .timedOut: return "no reply within the call's timeout"
        default: return String(cString: strerror(errno))
        }
    }

    /// "walk /a/b: No such file or directory".
    public var description: String {
        if let path { return "\(operation.rawValue) \(path): \(reason)" }
        return "\(operation.rawValue): \(reason)"
    }
}

/// The 9P operation a call performed (named after its T-message).
public enum NinePOperation: String, Sendable {
    case connect, version, attach, walk, open, create, read, write, clunk, remove, statfs
    case getattr, setattr, readdir, fsync, lock, getlock, link, mkdir, symlink, mknod
    case rename, renameat, unlinkat, readlink, xattrwalk, xattrcreate, flush
}
