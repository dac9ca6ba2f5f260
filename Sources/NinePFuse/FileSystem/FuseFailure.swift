import Glibc
import NinePClient

/// An errno to answer a request with.
struct FuseFailure: Error {
    let errno: Int32
    init(_ errno: Int32) { self.errno = errno }
}

/// The errno the kernel gets for `error`: the server's own for a 9P error, EIO for a lost or
/// broken connection (the caller can do nothing else about either), EINTR for a cancelled task.
func fuseErrno(_ error: any Error) -> Int32 {
    switch error {
    case let failure as FuseFailure: return failure.errno
    case let nineP as NinePError:
        switch nineP.kind {
        case .server: return nineP.errno > 0 ? nineP.errno : EIO
        case .timedOut: return ETIMEDOUT
        case .invalidArgument: return nineP.errno > 0 ? nineP.errno : EINVAL
        case .connectionLost, .protocolViolation: return EIO
        }
    case is FuseCodecError: return EIO
    case is CancellationError: return EINTR
    default: return EIO
    }
}
