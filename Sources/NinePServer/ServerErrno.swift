import Glibc
import NinePWire

/// A request's failure: the Linux errno its Rlerror carries.
struct ServerErrno: Error, Equatable {
    var code: UInt32

    init(_ code: UInt32) { self.code = code }

    /// The calling thread's errno right after a failed system call.
    static var current: ServerErrno { ServerErrno(UInt32(errno)) }

    static let badFid = ServerErrno(LinuxErrno.EBADF)
    static let invalid = ServerErrno(LinuxErrno.EINVAL)
    static let readOnly = ServerErrno(LinuxErrno.EROFS)
    static let notSupported = ServerErrno(LinuxErrno.EOPNOTSUPP)
}
