import CNinePShims
import Glibc

extension Worker {
    /// --access client: the server created `name` in `directory` as root; it now belongs to
    /// the attaching user `uid`, in group `gid`, with exactly `mode` (permission bits, set after
    /// the chown, which clears setuid and setgid). Symlinks get owner and group only. A file
    /// that cannot be given away is removed again, so no root-owned file is left behind.
    func giveAway(
        _ entry: FidEntry<Backend>, directory: Int32, name: UnsafePointer<CChar>, openFd: Int32 = -1, uid: UInt32, gid: UInt32, mode: UInt32?,
        isDirectory: Bool = false
    ) throws(ServerErrno) {
        guard entry.export?.ownsForClients == true else { return }
        identity.keepSetIDBits()
        do throws(FileSystemError) {
            if openFd >= 0 {
                try backend.changeOwner(openFd, opened: true, uid: uid, gid: gid)
                if let mode { try backend.changeMode(openFd, opened: true, mode: mode & FileMode.permissionMask) }
            } else {
                try backend.changeOwner(directory, name, uid: uid, gid: gid)
                if var mode {
                    if isDirectory {
                        // A directory's setgid bit comes from its parent (mkdir keeps it; chown
                        // of a directory does not clear it): keep what the kernel gave it.
                        let st = try backend.stat(directory, name)
                        mode |= UInt32(st.stx_mode) & UInt32(Glibc.S_ISGID)
                    }
                    try backend.changeMode(directory, name, mode: mode & FileMode.permissionMask)
                }
            }
        } catch {
            try? backend.unlink(directory, name, removeDirectory: isDirectory)
            throw error
        }
    }
}
