import CNinePShims
import Glibc
import NinePWire

extension Worker {
    /// Borrows two fids (a directory and another) for one operation.
    func withTwoFids<R>(
        _ connection: ServerConnection, _ first: UInt32, _ second: UInt32,
        _ body: (FidEntry, FidEntry) throws(ServerErrno) -> R
    ) throws(ServerErrno) -> R {
        let a = try borrow(connection, first)
        defer { connection.fids.release(a) }
        let b = try borrow(connection, second)
        defer { connection.fids.release(b) }
        guard a.entry.kind == .file, b.entry.kind == .file else { throw ServerErrno.badFid }
        try become(a.entry.uid)
        return try body(a.entry, b.entry)
    }

    /// Tlink: a hard link to fid's file, named `name` in dfid.
    func link(_ connection: ServerConnection, tag: UInt16, dfid: UInt32, fid: UInt32, name: ByteView, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try requireWritable()
        let cName = try component(name, slot: 0)
        return try withTwoFids(connection, dfid, fid) { (directory, file) throws(ServerErrno) -> Int in
            if file.qid.isDirectory { throw ServerErrno(LinuxErrno.EPERM) }
            if ninep_fd_link(file.pathFd, directory.pathFd, cName) != 0 { throw ServerErrno.current }
            return try encode(.link, tag: tag, into: &w)
        }
    }

    /// Tsymlink: the target is stored as given and never resolved by the server.
    func symlink(
        _ connection: ServerConnection, tag: UInt16, dfid: UInt32, name: ByteView, target: ByteView, gid: UInt32, into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        try requireWritable()
        let cName = try component(name, slot: 0)
        if target.count == 0 { throw ServerErrno(LinuxErrno.ENOENT) }
        let cTarget = try cString(target, slot: 1).get()
        let qid = try createEntry(connection, dfid: dfid, name: cName, gid: gid, mode: nil) { directory in
            symlinkat(cTarget, directory, cName)
        }
        return try encode(.symlink(qid: qid), tag: tag, into: &w)
    }

    /// Tmknod: FIFOs and sockets for anyone; devices need root (the kernel checks as the user).
    func mknod(
        _ connection: ServerConnection, tag: UInt16, dfid: UInt32, name: ByteView, mode: UInt32, major: UInt32, minor: UInt32, gid: UInt32,
        into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        try requireWritable()
        let cName = try component(name, slot: 0)
        let device = dev_t(Self.encodeDevice(major: major, minor: minor))
        // creationMode reads the worker's identity, which withFid (inside createEntry) sets;
        // with --access client it changes nothing, so the give-away uses the requested mode.
        let qid = try createEntry(connection, dfid: dfid, name: cName, gid: gid, mode: mode) { directory in
            let kept = identity.creationMode(mode, group: creationGroup(gid))
            return mknodat(directory, cName, mode_t(kept & (FileMode.typeMask | FileMode.permissionMask)), device)
        }
        return try encode(.mknod(qid: qid), tag: tag, into: &w)
    }

    /// Trenameat: within or across directories; replaces an existing target as rename(2) does.
    func renameat(
        _ connection: ServerConnection, tag: UInt16, olddirfid: UInt32, oldname: ByteView, newdirfid: UInt32, newname: ByteView,
        into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        try requireWritable()
        let cOld = try component(oldname, slot: 0)
        let cNew = try component(newname, slot: 1)
        return try withTwoFids(connection, olddirfid, newdirfid) { (from, to) throws(ServerErrno) -> Int in
            if Glibc.renameat(from.pathFd, cOld, to.pathFd, cNew) != 0 { throw ServerErrno.current }
            return try encode(.renameat, tag: tag, into: &w)
        }
    }

    /// Tunlinkat: a file, or with AT_REMOVEDIR an empty directory.
    func unlinkat(_ connection: ServerConnection, tag: UInt16, dirfid: UInt32, name: ByteView, flags: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try requireWritable()
        let cName = try component(name, slot: 0)
        if flags & ~UnlinkFlags.removeDir != 0 { throw ServerErrno.invalid }
        return try withFid(connection, dirfid) { (ref: inout FidRef) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file else { throw ServerErrno.badFid }
            let hostFlags: Int32 = flags & UnlinkFlags.removeDir != 0 ? AT_REMOVEDIR : 0
            if Glibc.unlinkat(ref.entry.pathFd, cName, hostFlags) != 0 { throw ServerErrno.current }
            return try encode(.unlinkat, tag: tag, into: &w)
        }
    }

    /// Treadlink: the link's text, exactly as stored.
    func readlink(_ connection: ServerConnection, tag: UInt16, fid: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try withFid(connection, fid) { (ref: inout FidRef) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file else { throw ServerErrno.badFid }
            guard ref.entry.qid.isSymlink else { throw ServerErrno.invalid }
            let buffer = names[2]
            let n = readlinkat(ref.entry.pathFd, emptyPath, buffer, Worker.nameCapacity - 1)
            if n < 0 { throw ServerErrno.current }
            let target = ByteView(UnsafeRawBufferPointer(start: buffer, count: n))
            return try encode(.readlink(target: target), tag: tag, into: &w)
        }
    }

    // MARK: Operations that name a fid's own file (rare in 9P2000.L: the kernel uses
    // Trenameat/Tunlinkat). The fid knows an inode, not a name, so its current name is read
    // from /proc and re-resolved beneath the export root, then checked to be the same inode.

    /// The directory holding a fid's file and its name there.
    func parentAndName(of entry: FidEntry) throws(ServerErrno) -> (parent: Int32, name: String) {
        if entry.isRoot { throw ServerErrno(LinuxErrno.EBUSY) }
        let buffer = names[2]
        let n = ninep_fd_readlink_path(entry.pathFd, buffer, Worker.nameCapacity - 1)
        if n < 0 { throw ServerErrno.current }
        let path = String(decoding: UnsafeRawBufferPointer(start: buffer, count: n), as: UTF8.self)
        let root = server.rootRealPath == "/" ? "" : server.rootRealPath
        guard path.hasPrefix(root + "/"), !path.hasSuffix(" (deleted)") else { throw ServerErrno(LinuxErrno.ENOENT) }
        let relative = path.dropFirst(root.count + 1)
        let parentPath: String
        let name: String
        if let slash = relative.lastIndex(of: "/") {
            parentPath = String(relative[..<slash])
            name = String(relative[relative.index(after: slash)...])
        } else {
            parentPath = "."
            name = String(relative)
        }
        let parent = ninep_openat2_beneath(server.rootFd, parentPath, NINEP_O_PATH | O_DIRECTORY | O_CLOEXEC, 0)
        if parent < 0 { throw ServerErrno.current }
        let expected = try stat(entry.pathFd)
        let found: statx
        do { found = try stat(parent, name) } catch {
            Glibc.close(parent)
            throw error
        }
        guard found.stx_ino == expected.stx_ino, found.deviceID == expected.deviceID else {
            Glibc.close(parent)
            throw ServerErrno(LinuxErrno.ENOENT)
        }
        return (parent, name)
    }

    /// Trename: moves fid's file into dfid under `name`.
    func rename(_ connection: ServerConnection, tag: UInt16, fid: UInt32, dfid: UInt32, name: ByteView, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try requireWritable()
        let cNew = try component(name, slot: 1)
        return try withTwoFids(connection, fid, dfid) { (file, directory) throws(ServerErrno) -> Int in
            let (parent, oldName) = try parentAndName(of: file)
            defer { Glibc.close(parent) }
            if Glibc.renameat(parent, oldName, directory.pathFd, cNew) != 0 { throw ServerErrno.current }
            return try encode(.rename, tag: tag, into: &w)
        }
    }

    /// Tremove: removes fid's file and clunks the fid, whether or not the removal worked.
    func remove(_ connection: ServerConnection, tag: UInt16, fid: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        defer { _ = connection.fids.clunk(fid) }
        try requireWritable()
        return try withFid(connection, fid) { (ref: inout FidRef) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file else { throw ServerErrno.badFid }
            let (parent, name) = try parentAndName(of: ref.entry)
            defer { Glibc.close(parent) }
            let flags: Int32 = ref.entry.qid.isDirectory ? AT_REMOVEDIR : 0
            if Glibc.unlinkat(parent, name, flags) != 0 { throw ServerErrno.current }
            return try encode(.remove, tag: tag, into: &w)
        }
    }
}
