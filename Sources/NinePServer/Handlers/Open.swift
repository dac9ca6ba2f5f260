import CNinePShims
import Glibc
import NinePWire

extension Worker {
    /// Host open(2) flags for 9P2000.L flags. Creation flags are handled by Tlcreate only;
    /// O_NOFOLLOW is implied (the fid names the inode already); O_CLOEXEC always.
    static func hostOpenFlags(_ flags: UInt32) -> Int32 {
        var host: Int32 = 0
        switch flags & OpenFlags.accessMode {
        case OpenFlags.writeOnly: host = O_WRONLY
        case OpenFlags.readWrite: host = O_RDWR
        default: host = O_RDONLY
        }
        if flags & OpenFlags.truncate != 0 { host |= O_TRUNC }
        if flags & OpenFlags.append != 0 { host |= O_APPEND }
        if flags & OpenFlags.nonBlock != 0 { host |= O_NONBLOCK }
        if flags & OpenFlags.dsync != 0 { host |= O_DSYNC }
        if flags & OpenFlags.direct != 0 { host |= NINEP_O_DIRECT }
        if flags & OpenFlags.directory != 0 { host |= O_DIRECTORY }
        if flags & OpenFlags.noAtime != 0 { host |= NINEP_O_NOATIME }
        if flags & OpenFlags.sync == OpenFlags.sync { host |= O_SYNC }
        return host | O_CLOEXEC | O_NOCTTY
    }

    static func wantsWrite(_ flags: UInt32) -> Bool {
        let mode = flags & OpenFlags.accessMode
        return mode == OpenFlags.writeOnly || mode == OpenFlags.readWrite || flags & OpenFlags.truncate != 0
    }

    /// The iounit announced by Rlopen/Rlcreate: the largest multiple of 4096 that fits a
    /// message. The kernel client then sends reads and writes in whole 4 KiB blocks (O_DIRECT
    /// works without splitting, and an interrupted large write never tears a block).
    static func iounit(_ connection: ServerConnection<Backend>) -> UInt32 {
        let msize = connection.stateLock.withLock { connection.msize }
        let room = msize > 24 ? msize - 24 : 0
        return room >= 4096 ? room & ~4095 : 0
    }

    /// Opens a handle for I/O, retrying without NINEP_O_NOATIME (allowed only to the owner).
    func reopen(_ pathFd: Int32, _ flags: Int32) throws(FileSystemError) -> Int32 {
        do throws(FileSystemError) {
            return try descriptor { () throws(FileSystemError) -> Int32 in try backend.open(pathFd, flags: flags) }
        } catch where error.errno == EPERM && flags & NINEP_O_NOATIME != 0 {
            return try descriptor { () throws(FileSystemError) -> Int32 in try backend.open(pathFd, flags: flags & ~NINEP_O_NOATIME) }
        }
    }

    /// Tlopen: opens the fid's file for I/O through its NINEP_O_PATH descriptor.
    func lopen(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, flags: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file, !ref.entry.isOpen else { throw ServerErrno.badFid }
            if ref.entry.qid.isSymlink { throw ServerErrno(LinuxErrno.ELOOP) }
            if Self.wantsWrite(flags) { try requireWritable(ref.entry) }
            var hostFlags = Self.hostOpenFlags(flags)
            if ref.entry.qid.isDirectory {
                if flags & OpenFlags.accessMode == OpenFlags.writeOnly || flags & OpenFlags.accessMode == OpenFlags.readWrite {
                    throw ServerErrno(LinuxErrno.EISDIR)
                }
                hostFlags = (hostFlags & ~O_TRUNC) | O_DIRECTORY
            }
            let st = try stat(ref.entry.pathFd)
            let streaming = backend.isStream(st)
            let fd: Int32
            if streaming {
                // Opening a FIFO waits for its peer: a Tflush may interrupt that (nothing has
                // changed until the open succeeds, and if it does after the abort, it is undone).
                guard let context, connection.enterInterruptible(context) else { throw ServerErrno(LinuxErrno.EINTR) }
                let opened: Result<Int32, FileSystemError>
                do throws(FileSystemError) { opened = .success(try reopen(ref.entry.pathFd, hostFlags)) } catch { opened = .failure(error) }
                if connection.leaveInterruptible(context) {
                    if case let .success(fd) = opened { backend.close(fd) }
                    throw ServerErrno(LinuxErrno.EINTR)
                }
                fd = try opened.get()
                // Our own open file description: non-blocking, so that reads and writes that
                // would wait park the request instead of a worker.
                backend.makeNonBlocking(fd)
            } else {
                fd = try reopen(ref.entry.pathFd, hostFlags)
            }
            var buffered: Int32 = -1
            if hostFlags & NINEP_O_DIRECT != 0 {
                do throws(FileSystemError) {
                    buffered = try reopen(ref.entry.pathFd, hostFlags & ~(NINEP_O_DIRECT | O_TRUNC))
                } catch {
                    backend.close(fd)
                    throw error
                }
            }
            var lost = false
            connection.fids.update(&ref) { entry in
                if entry.openFd >= 0 { lost = true; return }
                entry.openFd = fd
                entry.bufferedFd = buffered
                entry.openFlags = hostFlags
                entry.streaming = streaming
            }
            if lost {
                backend.close(fd)
                if buffered >= 0 { backend.close(buffered) }
                throw ServerErrno.badFid
            }
            return try encode(.lopen(qid: server.qids.qid(st), iounit: Self.iounit(connection)), tag: tag, into: &w)
        }
    }

    /// Tlcreate: creates and opens `name` in the directory fid, which then stands for the new
    /// file. O_NOFOLLOW|O_EXCL-free create never follows a symlink planted at `name`.
    func lcreate(
        _ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, name: ByteView, flags: UInt32, mode: UInt32, gid: UInt32,
        into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        let cName = try component(name, slot: 0)
        return try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            try requireWritable(ref.entry)
            guard ref.entry.kind == .file, !ref.entry.isOpen, ref.entry.qid.isDirectory else {
                throw ref.entry.qid.isDirectory ? ServerErrno.badFid : ServerErrno(LinuxErrno.ENOTDIR)
            }
            var hostFlags = Self.hostOpenFlags(flags) | O_CREAT | O_NOFOLLOW
            if flags & OpenFlags.exclusive != 0 { hostFlags |= O_EXCL }
            hostFlags &= ~O_DIRECTORY
            let group = creationGroup(gid, ref.entry)
            let permissions = identity.creationMode(mode, group: group) & FileMode.permissionMask
            let directory = ref.entry.pathFd
            // Giving a file away is only for one this request created: without O_EXCL, an
            // existing file is opened as it is.
            let exclusiveFirst = ref.entry.export!.ownsForClients && hostFlags & O_EXCL == 0
            var created = true
            var fd: Int32
            do throws(FileSystemError) {
                fd = try creating(inGroup: group) { () throws(FileSystemError) -> Int32 in
                    try descriptor { () throws(FileSystemError) -> Int32 in
                        try backend.openAt(directory, cName, flags: exclusiveFirst ? hostFlags | O_EXCL : hostFlags, mode: permissions)
                    }
                } undo: { fd in
                    backend.close(fd)
                }
            } catch where exclusiveFirst && error.errno == EEXIST {
                created = false
                fd = try descriptor { () throws(FileSystemError) -> Int32 in
                    try backend.openAt(directory, cName, flags: hostFlags & ~O_CREAT, mode: 0)
                }
            }
            if created {
                do throws(ServerErrno) {
                    try giveAway(ref.entry, directory: directory, name: cName, openFd: fd, uid: ref.entry.uid, gid: group, mode: mode)
                } catch {
                    backend.close(fd)
                    throw error
                }
            }
            let pathFd: Int32
            do throws(FileSystemError) {
                pathFd = try descriptor { () throws(FileSystemError) -> Int32 in try backend.open(fd, flags: NINEP_O_PATH) }
            } catch {
                backend.close(fd)
                throw error
            }
            let st: statx
            do throws(ServerErrno) { st = try stat(fd) } catch {
                backend.close(fd)
                backend.close(pathFd)
                throw error
            }
            let qid = server.qids.qid(st)
            var buffered: Int32 = -1
            if hostFlags & NINEP_O_DIRECT != 0 {
                buffered = (try? reopen(pathFd, hostFlags & ~(NINEP_O_DIRECT | O_TRUNC | O_CREAT | O_EXCL))) ?? -1
            }
            var oldPath: Int32 = -1
            connection.fids.update(&ref) { entry in
                oldPath = entry.pathFd
                entry.pathFd = pathFd
                entry.openFd = fd
                entry.bufferedFd = buffered
                entry.openFlags = hostFlags
                entry.qid = qid
                entry.device = st.deviceID
                entry.isRoot = false
                entry.streaming = backend.isStream(st)
            }
            if oldPath >= 0 { backend.close(oldPath) }
            return try encode(.lcreate(qid: qid, iounit: Self.iounit(connection)), tag: tag, into: &w)
        }
    }
}
