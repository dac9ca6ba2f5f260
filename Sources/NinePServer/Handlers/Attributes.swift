import CNinePShims
import Glibc
import NinePWire

extension Worker {
    /// Tgetattr: statx of the fid's descriptor (valid for an unlinked file too).
    func getattr(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, mask: UInt64, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file else { throw ServerErrno.badFid }
            let st = try stat(ref.entry.isOpen ? ref.entry.openFd : ref.entry.pathFd)
            var a = Attributes()
            a.valid = GetattrMask.basic
            a.qid = server.qids.qid(st)
            a.mode = UInt32(st.stx_mode)
            a.uid = st.stx_uid
            a.gid = st.stx_gid
            a.nlink = UInt64(st.stx_nlink)
            a.rdev = Self.encodeDevice(major: st.stx_rdev_major, minor: st.stx_rdev_minor)
            a.size = st.stx_size
            a.blockSize = UInt64(st.stx_blksize)
            a.blocks = st.stx_blocks
            a.atimeSeconds = UInt64(bitPattern: st.stx_atime.tv_sec)
            a.atimeNanoseconds = UInt64(st.stx_atime.tv_nsec)
            a.mtimeSeconds = UInt64(bitPattern: st.stx_mtime.tv_sec)
            a.mtimeNanoseconds = UInt64(st.stx_mtime.tv_nsec)
            a.ctimeSeconds = UInt64(bitPattern: st.stx_ctime.tv_sec)
            a.ctimeNanoseconds = UInt64(st.stx_ctime.tv_nsec)
            if st.stx_mask & UInt32(STATX_BTIME) != 0 {
                a.valid |= GetattrMask.btime
                a.btimeSeconds = UInt64(bitPattern: st.stx_btime.tv_sec)
                a.btimeNanoseconds = UInt64(st.stx_btime.tv_nsec)
            }
            return try encode(.getattr(a), tag: tag, into: &w)
        }
    }

    /// glibc's dev_t layout, which the kernel client decodes.
    static func encodeDevice(major: UInt32, minor: UInt32) -> UInt64 {
        let ma = UInt64(major), mi = UInt64(minor)
        return (ma & 0xfff) << 8 | (ma & ~0xfff) << 32 | (mi & 0xff) | (mi & ~0xff) << 12
    }

    /// Tsetattr: mode, owner, size, then times. A fid opened for I/O acts on its open
    /// descriptor (fchmod, fchown, ftruncate, futimens), as those calls do on the client: an
    /// open-then-unlinked file still works, and a descriptor open for writing truncates even
    /// a file whose mode or owner would refuse truncate(2) by name. Otherwise the fid's
    /// NINEP_O_PATH descriptor stands for the path, with truncate(2)'s permission check.
    func setattr(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, fields f: SetattrFields, into w: inout WireWriter) throws(ServerErrno) -> Int {
        return try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            try requireWritable(ref.entry)
            guard ref.entry.kind == .file else { throw ServerErrno.badFid }
            let ownsForClients = ref.entry.export!.ownsForClients
            let pathFd = ref.entry.pathFd
            let openFd = ref.entry.isOpen ? ref.entry.openFd : -1
            if f.valid & SetattrValid.mode != 0 {
                if ref.entry.qid.isSymlink { throw ServerErrno.notSupported }
                let mode = f.mode & FileMode.permissionMask
                // --access client: the client allowed this chmod; without CAP_FSETID the kernel
                // would drop a setgid bit for a group the server thread is not in.
                if ownsForClients { identity.keepSetIDBits() }
                try backend.changeMode(openFd >= 0 ? openFd : pathFd, opened: openFd >= 0, mode: mode)
            }
            if f.valid & (SetattrValid.uid | SetattrValid.gid) != 0 {
                let uid = f.valid & SetattrValid.uid != 0 ? f.uid : UInt32.max
                let gid = f.valid & SetattrValid.gid != 0 ? f.gid : UInt32.max
                if ownsForClients { identity.keepSetIDBits() }
                try backend.changeOwner(openFd >= 0 ? openFd : pathFd, opened: openFd >= 0, uid: uid, gid: gid)
            }
            var timeValid = f.valid
            if f.valid & SetattrValid.size != 0 {
                guard f.size <= UInt64(Int64.max) else { throw ServerErrno(LinuxErrno.EFBIG) }
                if ownsForClients { identity.clearSetIDOnWrite(forUid: ref.entry.uid) }
                let writable = openFd >= 0 && ref.entry.openFlags & (O_WRONLY | O_RDWR) != 0
                try backend.truncate(writable ? openFd : pathFd, opened: writable, size: f.size)
                // A truncation sets mtime (and ctime) to now itself, with no owner check. The
                // kernel client sends truncate(2) and ftruncate(2) as SIZE|MTIME|CTIME: setting
                // "mtime = now" once more through utimensat would demand ownership and fail
                // EPERM for a writer who does not own the file.
                if timeValid & SetattrValid.mtimeSet == 0 { timeValid &= ~SetattrValid.mtime }
            }
            if timeValid & (SetattrValid.atime | SetattrValid.mtime) != 0 {
                let access = Self.time(set: timeValid & SetattrValid.atime != 0, explicit: timeValid & SetattrValid.atimeSet != 0,
                                       seconds: f.atimeSeconds, nanoseconds: f.atimeNanoseconds)
                let modification = Self.time(set: timeValid & SetattrValid.mtime != 0, explicit: timeValid & SetattrValid.mtimeSet != 0,
                                             seconds: f.mtimeSeconds, nanoseconds: f.mtimeNanoseconds)
                let symlink = ref.entry.qid.isSymlink
                try backend.setTimes(symlink || openFd < 0 ? pathFd : openFd, opened: !symlink && openFd >= 0, symlink: symlink,
                                     access: access, modification: modification)
            }
            return try encode(.setattr, tag: tag, into: &w)
        }
    }

    /// The timespec for one of atime/mtime: omitted, now (SET without the _SET form), or given.
    static func time(set: Bool, explicit: Bool, seconds: UInt64, nanoseconds: UInt64) -> timespec {
        var t = timespec()
        if !set {
            t.tv_nsec = (1 << 30) - 2  // UTIME_OMIT
        } else if !explicit {
            t.tv_nsec = (1 << 30) - 1  // UTIME_NOW
        } else {
            t.tv_sec = Int(truncatingIfNeeded: Int64(bitPattern: seconds))
            t.tv_nsec = Int(min(nanoseconds, 999_999_999))
        }
        return t
    }

    /// Tstatfs.
    func statfs(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file else { throw ServerErrno.badFid }
            let s = try backend.statfs(ref.entry.pathFd)
            let fields = StatfsFields(
                type: s.type, blockSize: s.block_size, blocks: s.blocks, blocksFree: s.blocks_free,
                blocksAvailable: s.blocks_available, files: s.files, filesFree: s.files_free, fsid: s.fsid, nameLength: s.name_length)
            return try encode(.statfs(fields), tag: tag, into: &w)
        }
    }
}
