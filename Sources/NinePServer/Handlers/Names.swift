import CNinePShims
import Glibc
import NinePWire

extension Worker {
    /// Borrows two fids (a directory and another) for one operation that changes the tree:
    /// both of one export (EXDEV across two, as across mounts), and that export writable.
    func withTwoFids<R>(
        _ connection: ServerConnection<Backend>, _ first: UInt32, _ second: UInt32,
        _ body: (FidEntry<Backend>, FidEntry<Backend>) throws(ServerErrno) -> R
    ) throws(ServerErrno) -> R {
        let a = try borrow(connection, first)
        defer { connection.fids.release(a) }
        let b = try borrow(connection, second)
        defer { connection.fids.release(b) }
        guard a.entry.kind == .file, b.entry.kind == .file else { throw ServerErrno.badFid }
        guard a.entry.export === b.entry.export else { throw ServerErrno(LinuxErrno.EXDEV) }
        try requireWritable(a.entry)
        try become(a.entry)
        return try body(a.entry, b.entry)
    }

    /// Tlink: a hard link to fid's file, named `name` in dfid.
    func link(_ connection: ServerConnection<Backend>, tag: UInt16, dfid: UInt32, fid: UInt32, name: ByteView, into w: inout WireWriter) throws(ServerErrno) -> Int {
        let cName = try component(name, slot: 0)
        return try withTwoFids(connection, dfid, fid) { (directory, file) throws(ServerErrno) -> Int in
            if file.qid.isDirectory { throw ServerErrno(LinuxErrno.EPERM) }
            try backend.link(file.pathFd, into: directory.pathFd, cName)
            return try encode(.link, tag: tag, into: &w)
        }
    }

    /// Tsymlink: the target is stored as given and never resolved by the server.
    func symlink(
        _ connection: ServerConnection<Backend>, tag: UInt16, dfid: UInt32, name: ByteView, target: ByteView, gid: UInt32, into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        let cName = try component(name, slot: 0)
        if target.count == 0 { throw ServerErrno(LinuxErrno.ENOENT) }
        let cTarget = try cString(target, slot: 1).get()
        let qid = try createEntry(connection, dfid: dfid, name: cName, gid: gid, mode: nil) { (directory, _) throws(FileSystemError) in
            try backend.makeSymlink(directory, cName, target: cTarget)
        }
        return try encode(.symlink(qid: qid), tag: tag, into: &w)
    }

    /// Tmknod: FIFOs and sockets for anyone; devices need root (the kernel checks as the user).
    func mknod(
        _ connection: ServerConnection<Backend>, tag: UInt16, dfid: UInt32, name: ByteView, mode: UInt32, major: UInt32, minor: UInt32, gid: UInt32,
        into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        let cName = try component(name, slot: 0)
        let device = Self.encodeDevice(major: major, minor: minor)
        // creationMode reads the worker's identity, which withFid (inside createEntry) sets;
        // with --access client it changes nothing, so the give-away uses the requested mode.
        let qid = try createEntry(connection, dfid: dfid, name: cName, gid: gid, mode: mode) { (directory, group) throws(FileSystemError) in
            let kept = identity.creationMode(mode, group: group)
            try backend.makeNode(directory, cName, mode: kept & (FileMode.typeMask | FileMode.permissionMask), device: device)
        }
        return try encode(.mknod(qid: qid), tag: tag, into: &w)
    }

    /// Trenameat: within or across directories; replaces an existing target as rename(2) does.
    func renameat(
        _ connection: ServerConnection<Backend>, tag: UInt16, olddirfid: UInt32, oldname: ByteView, newdirfid: UInt32, newname: ByteView,
        into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        let cOld = try component(oldname, slot: 0)
        let cNew = try component(newname, slot: 1)
        return try withTwoFids(connection, olddirfid, newdirfid) { (from, to) throws(ServerErrno) -> Int in
            try backend.rename(from.pathFd, cOld, to: to.pathFd, cNew)
            return try encode(.renameat, tag: tag, into: &w)
        }
    }

    /// Tunlinkat: a file, or with AT_REMOVEDIR an empty directory.
    func unlinkat(_ connection: ServerConnection<Backend>, tag: UInt16, dirfid: UInt32, name: ByteView, flags: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        let cName = try component(name, slot: 0)
        if flags & ~UnlinkFlags.removeDir != 0 { throw ServerErrno.invalid }
        return try withFid(connection, dirfid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            try requireWritable(ref.entry)
            guard ref.entry.kind == .file else { throw ServerErrno.badFid }
            try backend.unlink(ref.entry.pathFd, cName, removeDirectory: flags & UnlinkFlags.removeDir != 0)
            return try encode(.unlinkat, tag: tag, into: &w)
        }
    }

    /// Treadlink: the link's text, exactly as stored.
    func readlink(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file else { throw ServerErrno.badFid }
            guard ref.entry.qid.isSymlink else { throw ServerErrno.invalid }
            let buffer = names[2]
            let n = try backend.readLink(ref.entry.pathFd, into: UnsafeMutableRawBufferPointer(start: buffer, count: Self.nameCapacity - 1))
            let target = ByteView(UnsafeRawBufferPointer(start: buffer, count: n))
            return try encode(.readlink(target: target), tag: tag, into: &w)
        }
    }

    // MARK: Operations that name a fid's own file (rare in 9P2000.L: the kernel uses
    // Trenameat/Tunlinkat). The fid knows an inode, not a name: the backend finds it.

    /// The directory holding a fid's file and its name there.
    func parentAndName(of entry: FidEntry<Backend>) throws(ServerErrno) -> (parent: Int32, name: String) {
        if entry.isRoot { throw ServerErrno(LinuxErrno.EBUSY) }
        guard let export = entry.export else { throw ServerErrno.badFid }
        return try export.backend.locate(entry.pathFd)
    }

    /// Lends `name` as a C string to a backend call (String.withCString rethrows untyped).
    func withCName(_ name: String, _ body: (UnsafePointer<CChar>) throws(FileSystemError) -> Void) throws(FileSystemError) {
        let failure: FileSystemError? = name.withCString { c in
            do throws(FileSystemError) { try body(c) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    /// Trename: moves fid's file into dfid under `name`.
    func rename(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, dfid: UInt32, name: ByteView, into w: inout WireWriter) throws(ServerErrno) -> Int {
        let cNew = try component(name, slot: 1)
        return try withTwoFids(connection, fid, dfid) { (file, directory) throws(ServerErrno) -> Int in
            let (parent, oldName) = try parentAndName(of: file)
            defer { backend.close(parent) }
            try withCName(oldName) { (cOld) throws(FileSystemError) in try backend.rename(parent, cOld, to: directory.pathFd, cNew) }
            return try encode(.rename, tag: tag, into: &w)
        }
    }

    /// Tremove: removes fid's file and clunks the fid, whether or not the removal worked.
    func remove(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        defer {
            _ = connection.fids.clunk(fid)
            connection.localIO.forget(fid: fid)
        }
        return try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            try requireWritable(ref.entry)
            guard ref.entry.kind == .file else { throw ServerErrno.badFid }
            let (parent, name) = try parentAndName(of: ref.entry)
            defer { backend.close(parent) }
            let isDirectory = ref.entry.qid.isDirectory
            try withCName(name) { (cName) throws(FileSystemError) in try backend.unlink(parent, cName, removeDirectory: isDirectory) }
            return try encode(.remove, tag: tag, into: &w)
        }
    }
}
