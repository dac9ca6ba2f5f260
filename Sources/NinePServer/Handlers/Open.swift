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
    static func iounit(_ connection: ServerConnection) -> UInt32 {
        let msize = connection.stateLock.withLock { connection.msize }
        let room = msize > 24 ? msize - 24 : 0
        return room >= 4096 ? room & ~4095 : 0
    }

    /// Opens a descriptor for I/O, retrying without NINEP_O_NOATIME (allowed only to the owner).
    func reopen(_ pathFd: Int32, _ flags: Int32) -> Int32 {
        var fd = descriptor { ninep_reopen(pathFd, flags) }
        if fd < 0 && errno == EPERM && flags & NINEP_O_NOATIME != 0 {
            fd = descriptor { ninep_reopen(pathFd, flags & ~NINEP_O_NOATIME) }
        }
        return fd
    }

    /// Tlopen: opens the fid's file for I/O through its NINEP_O_PATH descriptor.
    func lopen(_ connection: ServerConnection, tag: UInt16, fid: UInt32, flags: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try withFid(connection, fid) { (ref: inout FidRef) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file, !ref.entry.isOpen else { throw ServerErrno.badFid }
            if ref.entry.qid.isSymlink { throw ServerErrno(LinuxErrno.ELOOP) }
            if Self.wantsWrite(flags) { try requireWritable() }
            var hostFlags = Self.hostOpenFlags(flags)
            if ref.entry.qid.isDirectory {
                if flags & OpenFlags.accessMode == OpenFlags.writeOnly || flags & OpenFlags.accessMode == OpenFlags.readWrite {
                    throw ServerErrno(LinuxErrno.EISDIR)
                }
                hostFlags = (hostFlags & ~O_TRUNC) | O_DIRECTORY
            }
            let st = try stat(ref.entry.pathFd)
            let streaming = FileMode.isStreaming(UInt32(st.stx_mode))
            let fd: Int32
            if streaming {
                // Opening a FIFO waits for its peer: a Tflush may interrupt that (nothing has
                // changed until the open succeeds, and if it does after the abort, it is undone).
                guard let context, connection.enterInterruptible(context) else { throw ServerErrno(LinuxErrno.EINTR) }
                fd = reopen(ref.entry.pathFd, hostFlags)
                let openErrno = errno
                if connection.leaveInterruptible(context) {
                    if fd >= 0 { Glibc.close(fd) }
                    throw ServerErrno(LinuxErrno.EINTR)
                }
                guard fd >= 0 else { throw ServerErrno(UInt32(openErrno)) }
                // Our own open file description: non-blocking, so that reads and writes that
                // would wait park the request instead of a worker.
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            } else {
                fd = reopen(ref.entry.pathFd, hostFlags)
                guard fd >= 0 else { throw ServerErrno.current }
            }
            var buffered: Int32 = -1
            if hostFlags & NINEP_O_DIRECT != 0 {
                buffered = reopen(ref.entry.pathFd, hostFlags & ~(NINEP_O_DIRECT | O_TRUNC))
                if buffered < 0 {
                    let e = ServerErrno.current
                    Glibc.close(fd)
                    throw e
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
                Glibc.close(fd)
                if buffered >= 0 { Glibc.close(buffered) }
                throw ServerErrno.badFid
            }
            return try encode(.lopen(qid: server.qids.qid(st), iounit: Self.iounit(connection)), tag: tag, into: &w)
        }
    }

    /// Tlcreate: creates and opens `name` in the directory fid, which then stands for the new
    /// file. O_NOFOLLOW|O_EXCL-free create never follows a symlink planted at `name`.
    func lcreate(
        _ connection: ServerConnection, tag: UInt16, fid: UInt32, name: ByteView, flags: UInt32, mode: UInt32, gid: UInt32,
        into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        try requireWritable()
        let cName = try component(name, slot: 0)
        return try withFid(connection, fid) { (ref: inout FidRef) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file, !ref.entry.isOpen, ref.entry.qid.isDirectory else {
                throw ref.entry.qid.isDirectory ? ServerErrno.badFid : ServerErrno(LinuxErrno.ENOTDIR)
            }
            var hostFlags = Self.hostOpenFlags(flags) | O_CREAT | O_NOFOLLOW
            if flags & OpenFlags.exclusive != 0 { hostFlags |= O_EXCL }
            hostFlags &= ~O_DIRECTORY
            let group = creationGroup(gid)
            let permissions = identity.creationMode(mode, group: group) & FileMode.permissionMask
            let directory = ref.entry.pathFd
            // Giving a file away is only for one this request created: without O_EXCL, an
            // existing file is opened as it is.
            let exclusiveFirst = server.ownsForClients && hostFlags & O_EXCL == 0
            var created = true
            var (fd, openErrno) = try creating(inGroup: group) {
                descriptor { openat(directory, cName, exclusiveFirst ? hostFlags | O_EXCL : hostFlags, mode_t(permissions)) }
            } undo: { fd in
                if fd >= 0 { Glibc.close(fd) }
            }
            if fd < 0 && exclusiveFirst && openErrno == EEXIST {
                created = false
                fd = descriptor { openat(directory, cName, hostFlags & ~O_CREAT, 0) }
                openErrno = errno
            }
            guard fd >= 0 else { throw ServerErrno(UInt32(openErrno)) }
            if created {
                do throws(ServerErrno) {
                    try giveAway(directory: directory, name: cName, openFd: fd, uid: ref.entry.uid, gid: group, mode: mode)
                } catch {
                    Glibc.close(fd)
                    throw error
                }
            }
            let pathFd = descriptor { ninep_reopen(fd, NINEP_O_PATH) }
            guard pathFd >= 0 else {
                let e = ServerErrno.current
                Glibc.close(fd)
                throw e
            }
            let st: statx
            do throws(ServerErrno) { st = try stat(fd) } catch {
                Glibc.close(fd)
                Glibc.close(pathFd)
                throw error
            }
            let qid = server.qids.qid(st)
            var buffered: Int32 = -1
            if hostFlags & NINEP_O_DIRECT != 0 {
                buffered = reopen(pathFd, hostFlags & ~(NINEP_O_DIRECT | O_TRUNC | O_CREAT | O_EXCL))
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
                entry.streaming = FileMode.isStreaming(UInt32(st.stx_mode))
            }
            if oldPath >= 0 { Glibc.close(oldPath) }
            return try encode(.lcreate(qid: qid, iounit: Self.iounit(connection)), tag: tag, into: &w)
        }
    }
}
