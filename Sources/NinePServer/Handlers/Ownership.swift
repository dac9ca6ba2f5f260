import CNinePShims
import Glibc

extension Worker {
    /// --access client: the server created `name` in `directory` as root; it now belongs to
    /// the attaching user `uid`, in group `gid`, with exactly `mode` (permission bits, set after
    /// the chown, which clears setuid and setgid). Symlinks get owner and group only. A file
    /// that cannot be given away is removed again, so no root-owned file is left behind.
    func giveAway(
        directory: Int32, name: UnsafePointer<CChar>, openFd: Int32 = -1, uid: UInt32, gid: UInt32, mode: UInt32?,
        isDirectory: Bool = false
    ) throws(ServerErrno) {
        guard server.ownsForClients else { return }
        identity.keepSetIDBits()
        var rc: Int32
        var code: Int32 = 0
        if openFd >= 0 {
            rc = fchown(openFd, uid, gid)
            if rc == 0, let mode { rc = fchmod(openFd, mode_t(mode & FileMode.permissionMask)) }
        } else {
            rc = fchownat(directory, name, uid, gid, AT_SYMLINK_NOFOLLOW)
            if rc == 0, var mode {
                if isDirectory {
                    // A directory's setgid bit comes from its parent (mkdir keeps it; chown
                    // of a directory does not clear it): keep what the kernel gave it.
                    var st = Glibc.stat()
                    rc = fstatat(directory, name, &st, AT_SYMLINK_NOFOLLOW)
                    mode |= UInt32(st.st_mode) & UInt32(Glibc.S_ISGID)
                }
                if rc == 0 { rc = fchmodat(directory, name, mode_t(mode & FileMode.permissionMask), 0) }
            }
        }
        if rc != 0 {
            code = errno
            _ = Glibc.unlinkat(directory, name, isDirectory ? AT_REMOVEDIR : 0)
            throw ServerErrno(UInt32(code))
        }
    }
}
