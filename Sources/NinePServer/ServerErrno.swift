import Glibc
import NinePWire

/// A request's failure: the Linux errno its Rlerror carries. The same type as the backend's
/// errors (see `FileSystemError`), so a failure from the file system needs no conversion.
typealias ServerErrno = FileSystemError

extension FileSystemError {
    static let badFid = ServerErrno(LinuxErrno.EBADF)
    static let invalid = ServerErrno(LinuxErrno.EINVAL)
    static let readOnly = ServerErrno(LinuxErrno.EROFS)
    static let notSupported = ServerErrno(LinuxErrno.EOPNOTSUPP)
}
