import Glibc
import NinePClient
import NinePWire

/// CREATE, MKDIR, MKNOD, SYMLINK, LINK, RENAME. New files are created with the caller's gid
/// (the kernel has applied the umask to the mode already).
extension NinePFileSystem {
    func create(_ header: FuseInHeader, _ c: FuseCreateIn, _ name: ByteView) async throws -> (FuseEntryOut, FuseOpenOut) {
        let directory = try await node(header.nodeID, for: header)
        // Tlcreate turns the fid it is sent on into the new, opened file: a clone of the
        // directory's fid becomes the handle; a walk to the name becomes the node.
        let opened = try await directory.clone()
        let createdQid: Qid
        do {
            createdQid = try await opened.create(name, flags: serverOpenFlags(c.flags) | (c.flags & UInt32(O_CREAT | O_EXCL)), mode: c.mode & 0o7777, gid: creationGroup(header))
        } catch {
            await opened.close()
            throw error
        }
        let fh = try await newHandle(opened)
        let entry: FuseEntryOut
        do {
            entry = try await createdEntry(directory, name, opened: opened, createdQid, header)
        } catch {
            await handles.remove(fh)?.close()
            throw error
        }
        return (entry, await dataPath(header, node: entry.nodeID, handle: fh, file: opened, flags: c.flags, created: createdQid))
    }

    /// The new file's entry: a walk to its name gives the node its fid, and its attributes come
    /// from the opened fid at the same time (both fids are the file once Tlcreate answered), so
    /// CREATE costs one round trip less than a walk followed by a getattr. Per-user fids, a
    /// failed call or a name that no longer leads to the created file take the serial way,
    /// which also says why.
    private func createdEntry(_ directory: RemoteFile, _ name: ByteView, opened: RemoteFile, _ createdQid: Qid, _ header: FuseInHeader) async throws -> FuseEntryOut {
        guard userFids == nil else {
            return try await self.entry(for: try await directory.walk(name), in: header.nodeID, named: name, header)
        }
        // The name is a view of the request buffer: it stays with this task, the getattr goes.
        async let stating: FileAttributes? = try? await opened.stat()
        let walking = try? await directory.walk(name)
        let attributes = await stating
        guard let walked = walking else {
            return try await self.entry(for: try await directory.walk(name), in: header.nodeID, named: name, header)
        }
        guard let attributes, walked.qid.path == createdQid.path, walked.qid.type == createdQid.type else {
            return try await self.entry(for: walked, in: header.nodeID, named: name, header)
        }
        return answered(entryOut(try await remembered(walked), attributes))
    }

    func mkdir(_ header: FuseInHeader, _ m: FuseMkdirIn, _ name: ByteView) async throws -> FuseEntryOut {
        let directory = try await node(header.nodeID, for: header)
        _ = try await directory.mkdir(name, mode: m.mode & 0o7777, gid: creationGroup(header))
        return try await entry(for: try await directory.walk(name), in: header.nodeID, named: name, header)
    }

    func mknod(_ header: FuseInHeader, _ m: FuseMknodIn, _ name: ByteView) async throws -> FuseEntryOut {
        let directory = try await node(header.nodeID, for: header)
        let device = DeviceNumber(fuse: m.rdev)
        _ = try await directory.mknod(name, mode: m.mode, major: device.major, minor: device.minor, gid: creationGroup(header))
        return try await entry(for: try await directory.walk(name), in: header.nodeID, named: name, header)
    }

    func symlink(_ header: FuseInHeader, _ name: ByteView, _ target: ByteView) async throws -> FuseEntryOut {
        let directory = try await node(header.nodeID, for: header)
        _ = try await directory.symlink(name, target: target, gid: creationGroup(header))
        return try await entry(for: try await directory.walk(name), in: header.nodeID, named: name, header)
    }

    func link(_ header: FuseInHeader, _ oldNodeID: UInt64, _ name: ByteView) async throws -> FuseEntryOut {
        let directory = try await node(header.nodeID, for: header)
        let existing = try await node(oldNodeID, for: header)
        try await directory.link(existing, as: name)
        return try await entry(for: try await directory.walk(name), in: header.nodeID, named: name, header)
    }

    /// Trenameat between any two directories of the mount (no EXDEV as 9pfuse answers).
    func rename(_ header: FuseInHeader, _ oldName: ByteView, _ newParent: UInt64, _ newName: ByteView) async throws {
        let from = try await node(header.nodeID, for: header)
        let to = try await node(newParent, for: header)
        try await from.rename(oldName, to: to, newName)
        // Servers whose fids name paths (diod) leave the moved file's node fid at the old name:
        // walk to the new name and give the node that fid. (Descendants of a moved directory
        // still hold old paths on such servers; ninepd's fids name inodes and need none of it.)
        // (With per-user fids: walked with the mount's own fid, which is the node's; the moved
        // node is then known by its new name, and users' fids of it are walked again.)
        if let moved = try? await node(newParent).walk(newName) {
            renamed(moved.qid, to: newParent, newName)
            let stale = nodes.replaceFile(moved)
            _ = stale
        }
    }
}
