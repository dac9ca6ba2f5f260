import Glibc
import NinePClient

/// Permission decisions the mount makes itself: ACCESS, and the set-id clearing the kernel asks
/// for before another user's write.
extension NinePFileSystem {
    /// Tsetattr with the caller's fid. One exception: without HANDLE_KILLPRIV the kernel clears
    /// the set-id bits before a write or truncate by someone else with a SETATTR of the mode, as
    /// the caller; a server checking as that user refuses it (only the owner may chmod), so the
    /// write would fail EPERM. When the change is exactly that (the current mode less setuid
    /// and/or setgid) and the caller may write the file, the mode is set with the mount's own
    /// attach: a caller who may write could clear the bits by writing anyway, so nothing is
    /// granted that the server would not.
    func setAttributes(_ file: RemoteFile, _ changes: AttributeChanges, _ header: FuseInHeader) async throws {
        do {
            try await file.setAttributes(changes)
        } catch let error as NinePError where error.kind == .server && error.errno == EPERM && changes.mode != nil && callsAsItself(header) {
            let mode = changes.mode ?? 0
            let setID = UInt32(S_ISUID | S_ISGID)
            var current = FuseAttr(try await file.stat())
            mapToLocal(&current)
            let was = current.mode & 0o7777
            guard was & setID != 0, mode & ~setID == was & ~setID, mode & setID != was & setID, mode & setID & ~was == 0,
                  permits(header, current, wanted: 2)
            else { throw error }
            var rest = changes
            rest.mode = nil
            if rest != AttributeChanges() { try await file.setAttributes(rest) }
            var clear = AttributeChanges()
            clear.mode = mode
            try await node(header.nodeID).setAttributes(clear)
        }
    }

    // MARK: ACCESS

    /// access(2), chdir(2) and the like without default_permissions (with it the kernel decides
    /// itself and never asks): the mode bits of the node, fetched fresh with the caller's fid
    /// (so the walk to it is checked as the caller too), against the caller's uid, gid and
    /// supplementary groups (read from /proc/PID/status), as the kernel's generic_permission
    /// decides. Answering ENOSYS instead would make the kernel say yes to every later access(2),
    /// including where the server then refuses the open.
    func access(_ header: FuseInHeader, mask: UInt32) async throws {
        let file = try await node(header.nodeID, for: header)
        var attr = FuseAttr(try await file.stat())
        mapToLocal(&attr)
        if !permits(header, attr, wanted: mask & 7) { throw FuseFailure(EACCES) }
    }

    /// Whether the mode bits give the caller `wanted` (4 read, 2 write, 1 execute or search).
    func permits(_ header: FuseInHeader, _ attr: FuseAttr, wanted: UInt32) -> Bool {
        if wanted == 0 { return true }
        if header.uid == 0 {
            // Root reads and writes anything; it executes what has an x bit, or a directory.
            let isDirectory = attr.mode & UInt32(S_IFMT) == UInt32(S_IFDIR)
            return wanted & 1 == 0 || isDirectory || attr.mode & 0o111 != 0
        }
        let granted: UInt32
        if header.uid == attr.uid {
            granted = (attr.mode >> 6) & 7
        } else if header.gid == attr.gid || StatusGroups.contains(process: header.pid, gid: attr.gid) {
            granted = (attr.mode >> 3) & 7
        } else {
            granted = attr.mode & 7
        }
        return wanted & ~granted == 0
    }
}
