import CNinePShims
import Glibc

/// chmod, chown, truncate, times and statfs: on the open descriptor when there is one (as
/// the client's own fchmod/ftruncate act), else on the NINEP_O_PATH descriptor as a path.
extension PosixBackend {
    public func changeMode(_ handle: Int32, opened: Bool, mode: UInt32) throws(FileSystemError) {
        try Self.check(opened ? fchmod(handle, mode_t(mode)) : ninep_fd_chmod(handle, mode_t(mode)))
    }

    public func changeOwner(_ handle: Int32, opened: Bool, uid: UInt32, gid: UInt32) throws(FileSystemError) {
        try Self.check(opened
            ? fchown(handle, uid_t(uid), gid_t(gid))
            : fchownat(handle, emptyPath, uid_t(uid), gid_t(gid), NINEP_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
    }

    public func truncate(_ handle: Int32, opened: Bool, size: UInt64) throws(FileSystemError) {
        try Self.check(opened ? ftruncate(handle, off_t(size)) : ninep_fd_truncate(handle, off_t(size)))
    }

    public func setTimes(_ handle: Int32, opened: Bool, symlink: Bool, access: timespec, modification: timespec) throws(FileSystemError) {
        var times = (access, modification)
        let rc = withUnsafePointer(to: &times) { pointer in
            pointer.withMemoryRebound(to: timespec.self, capacity: 2) { ts in
                if symlink { return utimensat(handle, emptyPath, ts, NINEP_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) }
                return opened ? futimens(handle, ts) : ninep_fd_utimens(handle, ts)
            }
        }
        try Self.check(rc)
    }

    public func changeOwner(_ directory: Int32, _ name: UnsafePointer<CChar>, uid: UInt32, gid: UInt32) throws(FileSystemError) {
        try Self.check(fchownat(directory, name, uid_t(uid), gid_t(gid), AT_SYMLINK_NOFOLLOW))
    }

    public func changeMode(_ directory: Int32, _ name: UnsafePointer<CChar>, mode: UInt32) throws(FileSystemError) {
        try Self.check(fchmodat(directory, name, mode_t(mode), 0))
    }

    public func statfs(_ handle: Int32) throws(FileSystemError) -> ninep_statfs_result {
        var s = ninep_statfs_result()
        try Self.check(ninep_fstatfs(handle, &s))
        return s
    }
}
