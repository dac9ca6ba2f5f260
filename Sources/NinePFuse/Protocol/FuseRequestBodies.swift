// The fixed parts of requests, one struct per kernel struct, in the order of their fields.
// Names that follow a fixed part (a file name, WRITE data) are decoded by `FuseRequest`.

/// `fuse_getattr_in` (16 bytes). `flags` has FUSE_GETATTR_FH when `fh` names an open file.
public struct FuseGetattrIn: FuseStruct {
    public static let wireSize = 16
    public static let flagFH: UInt32 = 1
    public var flags: UInt32
    public var fh: UInt64
    public init(flags: UInt32, fh: UInt64) { self.flags = flags; self.fh = fh }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        flags = try r.u32(); _ = try r.u32(); fh = try r.u64()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u32(flags); try w.u32(0); try w.u64(fh) }
}

/// `fuse_setattr_in` (88 bytes): `valid` says which fields to change (FATTR_*).
public struct FuseSetattrIn: FuseStruct {
    public static let wireSize = 88
    public struct Valid: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let mode = Valid(rawValue: 1 << 0)
        public static let uid = Valid(rawValue: 1 << 1)
        public static let gid = Valid(rawValue: 1 << 2)
        public static let size = Valid(rawValue: 1 << 3)
        public static let atime = Valid(rawValue: 1 << 4)
        public static let mtime = Valid(rawValue: 1 << 5)
        public static let fh = Valid(rawValue: 1 << 6)
        public static let atimeNow = Valid(rawValue: 1 << 7)
        public static let mtimeNow = Valid(rawValue: 1 << 8)
        public static let lockOwner = Valid(rawValue: 1 << 9)
        public static let ctime = Valid(rawValue: 1 << 10)
        public static let killSuidgid = Valid(rawValue: 1 << 11)
    }
    public var valid: Valid = []
    public var fh: UInt64 = 0
    public var size: UInt64 = 0
    public var lockOwner: UInt64 = 0
    public var atime: UInt64 = 0
    public var mtime: UInt64 = 0
    public var ctime: UInt64 = 0
    public var atimeNanoseconds: UInt32 = 0
    public var mtimeNanoseconds: UInt32 = 0
    public var ctimeNanoseconds: UInt32 = 0
    public var mode: UInt32 = 0
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public init() {}
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        valid = Valid(rawValue: try r.u32()); _ = try r.u32()
        fh = try r.u64(); size = try r.u64(); lockOwner = try r.u64()
        atime = try r.u64(); mtime = try r.u64(); ctime = try r.u64()
        atimeNanoseconds = try r.u32(); mtimeNanoseconds = try r.u32(); ctimeNanoseconds = try r.u32()
        mode = try r.u32(); _ = try r.u32(); uid = try r.u32(); gid = try r.u32(); _ = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.require(Self.wireSize)
        try w.u32(valid.rawValue); try w.u32(0)
        try w.u64(fh); try w.u64(size); try w.u64(lockOwner); try w.u64(atime); try w.u64(mtime); try w.u64(ctime)
        try w.u32(atimeNanoseconds); try w.u32(mtimeNanoseconds); try w.u32(ctimeNanoseconds)
        try w.u32(mode); try w.u32(0); try w.u32(uid); try w.u32(gid); try w.u32(0)
    }
}

/// `fuse_open_in` (8 bytes), for OPEN and OPENDIR: the open(2) flags less O_CREAT, O_EXCL and
/// O_NOCTTY (and O_TRUNC unless atomic truncation was negotiated).
public struct FuseOpenIn: FuseStruct {
    public static let wireSize = 8
    public var flags: UInt32
    public var openFlags: UInt32
    public init(flags: UInt32, openFlags: UInt32 = 0) { self.flags = flags; self.openFlags = openFlags }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        flags = try r.u32(); openFlags = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u32(flags); try w.u32(openFlags) }
}

/// `fuse_create_in` (16 bytes), followed by the name.
public struct FuseCreateIn: FuseStruct {
    public static let wireSize = 16
    public var flags: UInt32
    public var mode: UInt32
    public var umask: UInt32
    public var openFlags: UInt32
    public init(flags: UInt32, mode: UInt32, umask: UInt32, openFlags: UInt32 = 0) {
        self.flags = flags; self.mode = mode; self.umask = umask; self.openFlags = openFlags
    }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        flags = try r.u32(); mode = try r.u32(); umask = try r.u32(); openFlags = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.u32(flags); try w.u32(mode); try w.u32(umask); try w.u32(openFlags)
    }
}

/// `fuse_mknod_in` (16 bytes), followed by the name.
public struct FuseMknodIn: FuseStruct {
    public static let wireSize = 16
    public var mode: UInt32
    public var rdev: UInt32
    public var umask: UInt32
    public init(mode: UInt32, rdev: UInt32, umask: UInt32) { self.mode = mode; self.rdev = rdev; self.umask = umask }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        mode = try r.u32(); rdev = try r.u32(); umask = try r.u32(); _ = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u32(mode); try w.u32(rdev); try w.u32(umask); try w.u32(0) }
}

/// `fuse_mkdir_in` (8 bytes), followed by the name.
public struct FuseMkdirIn: FuseStruct {
    public static let wireSize = 8
    public var mode: UInt32
    public var umask: UInt32
    public init(mode: UInt32, umask: UInt32) { self.mode = mode; self.umask = umask }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        mode = try r.u32(); umask = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u32(mode); try w.u32(umask) }
}

/// `fuse_read_in` (40 bytes), for READ, READDIR and READDIRPLUS.
public struct FuseReadIn: FuseStruct {
    public static let wireSize = 40
    public var fh: UInt64
    public var offset: UInt64
    public var size: UInt32
    public var readFlags: UInt32
    public var lockOwner: UInt64
    /// The file's open flags.
    public var flags: UInt32
    public init(fh: UInt64, offset: UInt64, size: UInt32, readFlags: UInt32 = 0, lockOwner: UInt64 = 0, flags: UInt32 = 0) {
        self.fh = fh; self.offset = offset; self.size = size; self.readFlags = readFlags; self.lockOwner = lockOwner; self.flags = flags
    }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        fh = try r.u64(); offset = try r.u64(); size = try r.u32(); readFlags = try r.u32()
        lockOwner = try r.u64(); flags = try r.u32(); _ = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.u64(fh); try w.u64(offset); try w.u32(size); try w.u32(readFlags); try w.u64(lockOwner); try w.u32(flags); try w.u32(0)
    }
}

/// `fuse_write_in` (40 bytes), followed by `size` bytes of data.
public struct FuseWriteIn: FuseStruct {
    public static let wireSize = 40
    public var fh: UInt64
    public var offset: UInt64
    public var size: UInt32
    public var writeFlags: UInt32
    public var lockOwner: UInt64
    public var flags: UInt32
    public init(fh: UInt64, offset: UInt64, size: UInt32, writeFlags: UInt32 = 0, lockOwner: UInt64 = 0, flags: UInt32 = 0) {
        self.fh = fh; self.offset = offset; self.size = size; self.writeFlags = writeFlags; self.lockOwner = lockOwner; self.flags = flags
    }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        fh = try r.u64(); offset = try r.u64(); size = try r.u32(); writeFlags = try r.u32()
        lockOwner = try r.u64(); flags = try r.u32(); _ = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.u64(fh); try w.u64(offset); try w.u32(size); try w.u32(writeFlags); try w.u64(lockOwner); try w.u32(flags); try w.u32(0)
    }
}

/// `fuse_release_in` (24 bytes), for RELEASE and RELEASEDIR.
public struct FuseReleaseIn: FuseStruct {
    public static let wireSize = 24
    public var fh: UInt64
    public var flags: UInt32
    public var releaseFlags: UInt32
    public var lockOwner: UInt64
    public init(fh: UInt64, flags: UInt32 = 0, releaseFlags: UInt32 = 0, lockOwner: UInt64 = 0) {
        self.fh = fh; self.flags = flags; self.releaseFlags = releaseFlags; self.lockOwner = lockOwner
    }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        fh = try r.u64(); flags = try r.u32(); releaseFlags = try r.u32(); lockOwner = try r.u64()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u64(fh); try w.u32(flags); try w.u32(releaseFlags); try w.u64(lockOwner) }
}

/// `fuse_flush_in` (24 bytes): sent on every close(2) of a descriptor.
public struct FuseFlushIn: FuseStruct {
    public static let wireSize = 24
    public var fh: UInt64
    public var lockOwner: UInt64
    public init(fh: UInt64, lockOwner: UInt64 = 0) { self.fh = fh; self.lockOwner = lockOwner }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        fh = try r.u64(); _ = try r.u32(); _ = try r.u32(); lockOwner = try r.u64()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u64(fh); try w.u32(0); try w.u32(0); try w.u64(lockOwner) }
}

/// `fuse_fsync_in` (16 bytes), for FSYNC and FSYNCDIR; bit 0 of `flags`: data only.
public struct FuseFsyncIn: FuseStruct {
    public static let wireSize = 16
    public var fh: UInt64
    public var flags: UInt32
    public init(fh: UInt64, flags: UInt32 = 0) { self.fh = fh; self.flags = flags }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        fh = try r.u64(); flags = try r.u32(); _ = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u64(fh); try w.u32(flags); try w.u32(0) }
}

/// `fuse_file_lock` (24 bytes): a POSIX record lock; `end` is inclusive (OFFSET_MAX: to the end).
public struct FuseFileLock: FuseStruct {
    public static let wireSize = 24
    public var start: UInt64
    public var end: UInt64
    /// F_RDLCK 0, F_WRLCK 1, F_UNLCK 2.
    public var type: UInt32
    public var pid: UInt32
    public init(start: UInt64, end: UInt64, type: UInt32, pid: UInt32) { self.start = start; self.end = end; self.type = type; self.pid = pid }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        start = try r.u64(); end = try r.u64(); type = try r.u32(); pid = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u64(start); try w.u64(end); try w.u32(type); try w.u32(pid) }
}

/// `fuse_lk_in` (48 bytes), for GETLK, SETLK and SETLKW; `lkFlags` bit 0: a flock(2) lock.
public struct FuseLockIn: FuseStruct {
    public static let wireSize = 48
    public var fh: UInt64
    public var owner: UInt64
    public var lock: FuseFileLock
    public var lkFlags: UInt32
    public init(fh: UInt64, owner: UInt64, lock: FuseFileLock, lkFlags: UInt32 = 0) { self.fh = fh; self.owner = owner; self.lock = lock; self.lkFlags = lkFlags }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        fh = try r.u64(); owner = try r.u64(); lock = try FuseFileLock(reading: &r); lkFlags = try r.u32(); _ = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u64(fh); try w.u64(owner); try lock.write(to: &w); try w.u32(lkFlags); try w.u32(0) }
}

/// `fuse_fallocate_in` (32 bytes).
public struct FuseFallocateIn: FuseStruct {
    public static let wireSize = 32
    public var fh: UInt64
    public var offset: UInt64
    public var length: UInt64
    public var mode: UInt32
    public init(fh: UInt64, offset: UInt64, length: UInt64, mode: UInt32) { self.fh = fh; self.offset = offset; self.length = length; self.mode = mode }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        fh = try r.u64(); offset = try r.u64(); length = try r.u64(); mode = try r.u32(); _ = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u64(fh); try w.u64(offset); try w.u64(length); try w.u32(mode); try w.u32(0) }
}

/// `fuse_forget_one` (16 bytes): one entry of BATCH_FORGET.
public struct FuseForgetOne: FuseStruct {
    public static let wireSize = 16
    public var nodeID: UInt64
    public var lookups: UInt64
    public init(nodeID: UInt64, lookups: UInt64) { self.nodeID = nodeID; self.lookups = lookups }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        nodeID = try r.u64(); lookups = try r.u64()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u64(nodeID); try w.u64(lookups) }
}

/// `fuse_setxattr_in`: 8 bytes, or 16 with FUSE_SETXATTR_EXT (then `setxattrFlags` is there).
public struct FuseSetxattrIn: Equatable, Sendable {
    public static let compatibleSize = 8
    public static let extendedSize = 16
    public var size: UInt32
    public var flags: UInt32
    public var setxattrFlags: UInt32
    public init(size: UInt32, flags: UInt32, setxattrFlags: UInt32 = 0) { self.size = size; self.flags = flags; self.setxattrFlags = setxattrFlags }
}
