import Glibc
import NinePClient
import NinePWire

/// CREATE, MKDIR, MKNOD, SYMLINK, LINK, RENAME. New files are created with the caller's gid
/// (the kernel has applied the umask to the mode already).
extension NinePFileSystem {
    func create(_ header: FuseInHeader, _ c: FuseCreateIn, _ name: ByteView) async throws -> (FuseEntryOut, FuseOpenOut) {
        let directory = try node(header.nodeID)
        // Tlcreate turns the fid it is sent on into the new, opened file: a clone of the
        // directory's fid becomes the handle; a walk to the name becomes the node.
        let opened = try await directory.clone()
        do {
            _ = try await opened.create(name, flags: c.flags & ~UInt32(O_NOCTTY | O_CLOEXEC), mode: c.mode & 0o7777, gid: header.gid)
        } catch {
            await opened.close()
            throw error
        }
        let fh = try await newHandle(opened)
        let entry: FuseEntryOut
        do {
            entry = try await self.entry(for: try await directory.walk(name))
        } catch {
            await handles.remove(fh)?.close()
            throw error
        }
        return (entry, FuseOpenOut(fh: fh))
    }

    func mkdir(_ header: FuseInHeader, _ m: FuseMkdirIn, _ name: ByteView) async throws -> FuseEntryOut {
        let directory = try node(header.nodeID)
        _ = try await directory.mkdir(name, mode: m.mode & 0o7777, gid: header.gid)
        return try await entry(for: try await directory.walk(name))
    }

    func mknod(_ header: FuseInHeader, _ m: FuseMknodIn, _ name: ByteView) async throws -> FuseEntryOut {
        let directory = try node(header.nodeID)
        let device = DeviceNumber(fuse: m.rdev)
        _ = try await directory.mknod(name, mode: m.mode, major: device.major, minor: device.minor, gid: header.gid)
        return try await entry(for: try await directory.walk(name))
    }

    func symlink(_ header: FuseInHeader, _ name: ByteView, _ target: ByteView) async throws -> FuseEntryOut {
        let directory = try node(header.nodeID)
        _ = try await directory.symlink(name, target: target, gid: header.gid)
        return try await entry(for: try await directory.walk(name))
    }

    func link(_ header: FuseInHeader, _ oldNodeID: UInt64, _ name: ByteView) async throws -> FuseEntryOut {
        let directory = try node(header.nodeID)
        let existing = try node(oldNodeID)
        try await directory.link(existing, as: name)
        return try await entry(for: try await directory.walk(name))
    }

    /// Trenameat between any two directories of the mount (no EXDEV as 9pfuse answers).
    func rename(_ oldParent: UInt64, _ oldName: ByteView, _ newParent: UInt64, _ newName: ByteView) async throws {
        let from = try node(oldParent)
        let to = try node(newParent)
        try await from.rename(oldName, to: to, newName)
        // Servers whose fids name paths (diod) leave the moved file's node fid at the old name:
        // walk to the new name and give the node that fid. (Descendants of a moved directory
        // still hold old paths on such servers; ninepd's fids name inodes and need none of it.)
        if let moved = try? await to.walk(newName) {
            let stale = nodes.replaceFile(moved)
            _ = stale
        }
    }
}
