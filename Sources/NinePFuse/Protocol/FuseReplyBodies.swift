// The fixed parts of replies not covered by FuseAttr.swift.

/// `fuse_open_out` (16 bytes): the handle the kernel will name in READ, WRITE, RELEASE...
public struct FuseOpenOut: FuseStruct {
    public static let wireSize = 16
    /// FOPEN_* flags.
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let directIO = Flags(rawValue: 1 << 0)
        public static let keepCache = Flags(rawValue: 1 << 1)
        public static let nonSeekable = Flags(rawValue: 1 << 2)
        public static let cacheDir = Flags(rawValue: 1 << 3)
        public static let stream = Flags(rawValue: 1 << 4)
        public static let noFlush = Flags(rawValue: 1 << 5)
        public static let parallelDirectWrites = Flags(rawValue: 1 << 6)
        public static let passthrough = Flags(rawValue: 1 << 7)
    }
    public var fh: UInt64
    public var flags: Flags
    /// With FOPEN_PASSTHROUGH: the id FUSE_DEV_IOC_BACKING_OPEN returned.
    public var backingID: Int32
    public init(fh: UInt64, flags: Flags = [], backingID: Int32 = 0) { self.fh = fh; self.flags = flags; self.backingID = backingID }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        fh = try r.u64(); flags = Flags(rawValue: try r.u32()); backingID = Int32(bitPattern: try r.u32())
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u64(fh); try w.u32(flags.rawValue); try w.i32(backingID) }
}

/// `fuse_write_out` (8 bytes): how many bytes a WRITE took.
public struct FuseWriteOut: FuseStruct {
    public static let wireSize = 8
    public var size: UInt32
    public init(size: UInt32) { self.size = size }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        size = try r.u32(); _ = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u32(size); try w.u32(0) }
}

/// `fuse_getxattr_out` (8 bytes): the size of a value or list, for GETXATTR/LISTXATTR with size 0.
public struct FuseGetxattrOut: FuseStruct {
    public static let wireSize = 8
    public var size: UInt32
    public init(size: UInt32) { self.size = size }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        size = try r.u32(); _ = try r.u32()
    }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try w.u32(size); try w.u32(0) }
}

/// `fuse_lk_out` (24 bytes): the conflicting lock for GETLK (type F_UNLCK: none).
public struct FuseLockOut: FuseStruct {
    public static let wireSize = FuseFileLock.wireSize
    public var lock: FuseFileLock
    public init(lock: FuseFileLock) { self.lock = lock }
    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) { lock = try FuseFileLock(reading: &r) }
    public func write(to w: inout FuseWriter) throws(FuseCodecError) { try lock.write(to: &w) }
}
