import CNinePShims
import Glibc
import NinePWire

extension Worker {
    /// Treaddir: entries from getdents64 starting at the directory offset cookie the client
    /// passes back (the offset of the last entry it saw), so offsets are stable across calls.
    /// lseek + getdents64 move the descriptor's file position: a request that is the fid's only
    /// borrower uses the open descriptor, and one that shares the fid with another request in
    /// flight (pipelined Treaddirs on one fid) reads through a descriptor of its own, so no two
    /// requests ever move one position.
    func readdir(
        _ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, offset: UInt64, count: UInt32, into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file, ref.entry.isOpen else { throw ServerErrno.badFid }
            guard ref.entry.qid.isDirectory else { throw ServerErrno(LinuxErrno.ENOTDIR) }
            let ownsPosition = ref.entry.references == 1
            let fd: Int32
            if ownsPosition {
                fd = ref.entry.openFd
            } else {
                // The fid is open already: its own rights, not the directory's mode now, decide.
                let shared = ref.entry.openFd
                let opened: Result<Int32, FileSystemError> = identity.withFullCapabilities {
                    do throws(FileSystemError) {
                        return .success(try descriptor { () throws(FileSystemError) -> Int32 in try backend.openDirectoryAgain(shared) })
                    } catch {
                        return .failure(error)
                    }
                }
                fd = try opened.get()
            }
            defer { if !ownsPosition { backend.close(fd) } }
            let msize = Int(connection.stateLock.withLock { connection.msize })
            let maxCount = min(Int(count), msize - NineP.readdirReplyOverhead)
            var entries: DirEntryWriter
            do { entries = try DirEntryWriter(into: w.buffer, tag: tag, maxCount: max(maxCount, 0)) } catch {
                throw ServerErrno(LinuxErrno.ENOMEM)
            }
            try backend.seekDirectory(fd, to: offset)
            let device = ref.entry.device
            var full = false
            while !full {
                let n = try backend.readDirectory(fd, into: direntBuffer)
                if n == 0 { break }
                var position = 0
                while position < n {
                    // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name
                    let record = direntBuffer.baseAddress! + position
                    let inode = record.loadUnaligned(as: UInt64.self)
                    let nextOffset = record.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                    let length = Int(record.loadUnaligned(fromByteOffset: 16, as: UInt16.self))
                    let type = record.load(fromByteOffset: 18, as: UInt8.self)
                    let namePointer = (record + 19).assumingMemoryBound(to: CChar.self)
                    let name = ByteView(UnsafeRawBufferPointer(start: record + 19, count: strlen(namePointer)))
                    let qid = Qid(type: QidMapper.type(direntType: type), version: 0, path: server.qids.path(device: device, inode: inode))
                    if !entries.append(qid: qid, offset: nextOffset, type: type, name: name) {
                        full = true
                        break
                    }
                    position += length
                }
            }
            if entries.dataCount == 0 && full && maxCount > 0 {
                // Not even one entry fits the client's count.
                throw ServerErrno(LinuxErrno.EINVAL)
            }
            return entries.finish()
        }
    }

    /// Tmkdir.
    func mkdir(
        _ connection: ServerConnection<Backend>, tag: UInt16, dfid: UInt32, name: ByteView, mode: UInt32, gid: UInt32, into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        let cName = try component(name, slot: 0)
        // mkdir(2) keeps only the permission and sticky bits; setgid comes from the parent.
        let kept = mode & (FileMode.permissionMask & ~UInt32(Glibc.S_ISGID | Glibc.S_ISUID))
        let qid = try createEntry(connection, dfid: dfid, name: cName, gid: gid, mode: kept, isDirectory: true) { (directory, _) throws(FileSystemError) in
            try backend.makeDirectory(directory, cName, mode: mode & FileMode.permissionMask)
        }
        return try encode(.mkdir(qid: qid), tag: tag, into: &w)
    }

    /// Creates one entry named `cName` in the directory fid (mkdir, symlink, mknod): runs
    /// `make(directoryFd, group)` with the creation group (see `creationGroup`) as fsgid and returns the new entry's qid.
    /// With --access client the entry is then given to the attaching user with `mode` (nil:
    /// a symlink, owner and group only).
    func createEntry(
        _ connection: ServerConnection<Backend>, dfid: UInt32, name cName: UnsafePointer<CChar>, gid: UInt32, mode: UInt32?,
        isDirectory: Bool = false, _ make: (Int32, UInt32) throws(FileSystemError) -> Void
    ) throws(ServerErrno) -> Qid {
        try withFid(connection, dfid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Qid in
            try requireWritable(ref.entry)
            guard ref.entry.kind == .file else { throw ServerErrno.badFid }
            let group = creationGroup(gid, ref.entry)
            let directory = ref.entry.pathFd
            try creating(inGroup: group) { () throws(FileSystemError) in try make(directory, group) }
            try giveAway(ref.entry, directory: ref.entry.pathFd, name: cName, uid: ref.entry.uid, gid: group, mode: mode, isDirectory: isDirectory)
            return server.qids.qid(try stat(ref.entry.pathFd, cName))
        }
    }
}
