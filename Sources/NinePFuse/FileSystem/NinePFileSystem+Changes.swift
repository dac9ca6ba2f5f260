import Glibc
import NinePClient
import NinePWire

/// CREATE, MKDIR, MKNOD, SYMLINK, LINK, RENAME. New files are created with the caller's gid
/// (the kernel has applied the umask to the mode already).
extension NinePFileSystem {
    func create(_ header: FuseInHeader, _ c: FuseCreateIn, _ name: ByteView, worker: Int) async throws -> (FuseEntryOut, FuseOpenOut) {
        let directory = try await node(header.nodeID, for: header)
        // Tlcreate turns the fid it is sent on into the new, opened file, which becomes the
        // handle: a clone of the directory's fid, made after an earlier CREATE here (a spare:
        // one round trip less for the caller) or now. (Callers with attaches of their own
        // create through their fids: no spares.)
        let own = userFids == nil
        let (spare, refill) = own ? nodes.takeSpare(header.nodeID) : (nil, false)
        let opened: RemoteFile
        if let spare { opened = spare } else { opened = try await directory.clone() }
        let flags = serverOpenFlags(c.flags) | (c.flags & UInt32(O_CREAT | O_EXCL))
        let createdQid: Qid
        // With fids of its own the new file's attributes come from its walk (createdEntry);
        // else, for O_EXCL, a Tgetattr goes right behind the Tlcreate. (Without O_EXCL a
        // Tlcreate may open a FIFO and wait for its peer, so ninepd runs it on a worker, where
        // a Tgetattr behind it may well run first: no gain, a round trip more.)
        var attributes: FileAttributes? = nil
        do {
            if own && c.flags & UInt32(O_EXCL) != 0 {
                let created = try await opened.createAndStat(name, flags: flags, mode: c.mode & 0o7777, gid: creationGroup(header))
                (createdQid, attributes) = (created.0, created.1)
            } else {
                createdQid = try await opened.create(name, flags: flags, mode: c.mode & 0o7777, gid: creationGroup(header))
            }
        } catch {
            // A create the server refused left the fid the directory's clone: the next spare
            // (not one a reconnect could not bring back: every CREATE would take it and fail).
            if own, let failure = error as? NinePError, failure.kind == .server, !opened.isBroken,
               nodes.putSpare(header.nodeID, opened, of: directory) == nil {
                throw error
            }
            await opened.close()
            throw error
        }
        let fh = try await newHandle(opened)
        let entry: FuseEntryOut
        do {
            entry = try await createdEntry(directory, name, opened: opened, createdQid, attributes, handle: fh, exclusive: c.flags & UInt32(O_EXCL) != 0, header)
        } catch {
            nodes.released(header.nodeID, handle: fh)
            await handles.remove(fh)?.close()
            throw error
        }
        if refill { afterReply.makeSpare(for: header.nodeID, worker: worker) }
        return (entry, await dataPath(header, node: entry.nodeID, handle: fh, file: opened, flags: c.flags, created: createdQid))
    }

    /// The new file's entry: its attributes from the opened fid, and a node without a fid of
    /// its own (`NodeTable.rememberCreated`): it is walked by its name when something first
    /// needs it, which a create-close-unlink never does. Per-user fids (the node's name must
    /// be recorded for every user's walks) and a full table of unwalked open nodes walk it now.
    private func createdEntry(_ directory: RemoteFile, _ name: ByteView, opened: RemoteFile, _ createdQid: Qid, _ given: FileAttributes?, handle fh: UInt64, exclusive: Bool, _ header: FuseInHeader) async throws -> FuseEntryOut {
        guard userFids == nil else {
            return try await self.entry(for: try await directory.walk(name), in: header.nodeID, named: name, header)
        }
        let attributes: FileAttributes
        if let given { attributes = given } else { attributes = try await opened.stat() }
        switch nodes.rememberCreated(createdQid, name: NodeName(parent: header.nodeID, name: name), handle: fh) {
        case let .node(id, dropped):
            _ = dropped  // an earlier file's fid: clunked in the background as it goes
            // O_EXCL: the file is new, and creation gives no file security.capability: the
            // kernel's check before each write need not ask (as if it had, see XattrAbsence).
            // Only that name: a default ACL or a security label may come with a new file.
            if exclusive { xattrAbsence.recordAbsent(id, bit: XattrAbsence.capabilityBit) }
            return answered(entryOut(id, attributes))
        case .full:
            throw tableFull(1, "the node table is full (\(nodes.capacity) nodes, -o max_nodes): lookups answer ENFILE until the kernel forgets some")
        case .walkNow:
            let walked = try await directory.walk(name)
            guard walked.qid.path == createdQid.path, walked.qid.type == createdQid.type else {
                // The name leads elsewhere already: the entry is what it leads to.
                return try await self.entry(for: walked, in: header.nodeID, named: name, header)
            }
            return answered(entryOut(try await remembered(walked), attributes))
        }
    }

    func mkdir(_ header: FuseInHeader, _ m: FuseMkdirIn, _ name: ByteView) async throws -> FuseEntryOut {
        let directory = try await node(header.nodeID, for: header)
        _ = try await directory.mkdir(name, mode: m.mode & 0o7777, gid: creationGroup(header))
        return try await entry(ofNew: name, in: directory, parent: header.nodeID, header)
    }

    func mknod(_ header: FuseInHeader, _ m: FuseMknodIn, _ name: ByteView) async throws -> FuseEntryOut {
        let directory = try await node(header.nodeID, for: header)
        let device = DeviceNumber(fuse: m.rdev)
        _ = try await directory.mknod(name, mode: m.mode, major: device.major, minor: device.minor, gid: creationGroup(header))
        return try await entry(ofNew: name, in: directory, parent: header.nodeID, header)
    }

    func symlink(_ header: FuseInHeader, _ name: ByteView, _ target: ByteView) async throws -> FuseEntryOut {
        let directory = try await node(header.nodeID, for: header)
        _ = try await directory.symlink(name, target: target, gid: creationGroup(header))
        return try await entry(ofNew: name, in: directory, parent: header.nodeID, header)
    }

    func link(_ header: FuseInHeader, _ oldNodeID: UInt64, _ name: ByteView) async throws -> FuseEntryOut {
        let directory = try await node(header.nodeID, for: header)
        let existing = try await node(oldNodeID, for: header)
        try await directory.link(existing, as: name)
        return try await entry(ofNew: name, in: directory, parent: header.nodeID, header)
    }

    /// Trenameat between any two directories of the mount (no EXDEV as 9pfuse answers).
    func rename(_ header: FuseInHeader, _ oldName: ByteView, _ newParent: UInt64, _ newName: ByteView) async throws {
        let from = try await node(header.nodeID, for: header)
        let to = try await node(newParent, for: header)
        // A created node still open under the name replaced is walked first (see UNLINK);
        // the moved one is walked below, by its new name.
        await walkOpenCreated(newParent, newName)
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
