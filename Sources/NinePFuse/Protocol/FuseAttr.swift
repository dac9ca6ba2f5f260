/// `fuse_attr`: a file's attributes as the kernel caches them (88 bytes).
public struct FuseAttr: FuseStruct {
    public static let wireSize = 88
    public var ino: UInt64 = 0
    public var size: UInt64 = 0
    public var blocks: UInt64 = 0
    public var atime: UInt64 = 0
    public var mtime: UInt64 = 0
    public var ctime: UInt64 = 0
    public var atimeNanoseconds: UInt32 = 0
    public var mtimeNanoseconds: UInt32 = 0
    public var ctimeNanoseconds: UInt32 = 0
    public var mode: UInt32 = 0
    public var nlink: UInt32 = 0
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var rdev: UInt32 = 0
    public var blockSize: UInt32 = 0
    /// FUSE_ATTR_* flags (submount, DAX); 0 here.
    public var flags: UInt32 = 0

    public init() {}

    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        ino = try r.u64(); size = try r.u64(); blocks = try r.u64()
        atime = try r.u64(); mtime = try r.u64(); ctime = try r.u64()
        atimeNanoseconds = try r.u32(); mtimeNanoseconds = try r.u32(); ctimeNanoseconds = try r.u32()
        mode = try r.u32(); nlink = try r.u32(); uid = try r.u32(); gid = try r.u32(); rdev = try r.u32()
        blockSize = try r.u32(); flags = try r.u32()
    }

    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.require(Self.wireSize)
        try w.u64(ino); try w.u64(size); try w.u64(blocks)
        try w.u64(atime); try w.u64(mtime); try w.u64(ctime)
        try w.u32(atimeNanoseconds); try w.u32(mtimeNanoseconds); try w.u32(ctimeNanoseconds)
        try w.u32(mode); try w.u32(nlink); try w.u32(uid); try w.u32(gid); try w.u32(rdev)
        try w.u32(blockSize); try w.u32(flags)
    }
}

/// `fuse_entry_out`: the answer to LOOKUP, MKDIR, MKNOD, SYMLINK, LINK and (with an open) CREATE
/// (128 bytes). Each such answer adds one to the node's lookup count in the kernel.
public struct FuseEntryOut: FuseStruct {
    public static let wireSize = 40 + FuseAttr.wireSize
    public var nodeID: UInt64 = 0
    public var generation: UInt64 = 0
    public var entryValidSeconds: UInt64 = 0
    public var attrValidSeconds: UInt64 = 0
    public var entryValidNanoseconds: UInt32 = 0
    public var attrValidNanoseconds: UInt32 = 0
    public var attr = FuseAttr()

    public init() {}

    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        nodeID = try r.u64(); generation = try r.u64()
        entryValidSeconds = try r.u64(); attrValidSeconds = try r.u64()
        entryValidNanoseconds = try r.u32(); attrValidNanoseconds = try r.u32()
        attr = try FuseAttr(reading: &r)
    }

    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.require(Self.wireSize)
        try w.u64(nodeID); try w.u64(generation); try w.u64(entryValidSeconds); try w.u64(attrValidSeconds)
        try w.u32(entryValidNanoseconds); try w.u32(attrValidNanoseconds)
        try attr.write(to: &w)
    }
}

/// `fuse_attr_out`: the answer to GETATTR and SETATTR (104 bytes).
public struct FuseAttrOut: FuseStruct {
    public static let wireSize = 16 + FuseAttr.wireSize
    public var attrValidSeconds: UInt64 = 0
    public var attrValidNanoseconds: UInt32 = 0
    public var attr = FuseAttr()

    public init() {}

    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        attrValidSeconds = try r.u64(); attrValidNanoseconds = try r.u32(); _ = try r.u32()
        attr = try FuseAttr(reading: &r)
    }

    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.require(Self.wireSize)
        try w.u64(attrValidSeconds); try w.u32(attrValidNanoseconds); try w.u32(0)
        try attr.write(to: &w)
    }
}

/// `fuse_kstatfs` (the body of `fuse_statfs_out`, 80 bytes).
public struct FuseStatfsOut: FuseStruct {
    public static let wireSize = 80
    public var blocks: UInt64 = 0
    public var blocksFree: UInt64 = 0
    public var blocksAvailable: UInt64 = 0
    public var files: UInt64 = 0
    public var filesFree: UInt64 = 0
    public var blockSize: UInt32 = 0
    public var nameLength: UInt32 = 0
    public var fragmentSize: UInt32 = 0

    public init() {}

    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        blocks = try r.u64(); blocksFree = try r.u64(); blocksAvailable = try r.u64()
        files = try r.u64(); filesFree = try r.u64()
        blockSize = try r.u32(); nameLength = try r.u32(); fragmentSize = try r.u32()
        try r.skip(4 + 24)
    }

    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.require(Self.wireSize)
        try w.u64(blocks); try w.u64(blocksFree); try w.u64(blocksAvailable); try w.u64(files); try w.u64(filesFree)
        try w.u32(blockSize); try w.u32(nameLength); try w.u32(fragmentSize)
        try w.zeros(4 + 24)
    }
}
