/// `fuse_in_header`: what precedes every request read from /dev/fuse (40 bytes).
public struct FuseInHeader: FuseStruct {
    public static let wireSize = 40
    /// The whole request, this header included.
    public var length: UInt32
    public var opcode: FuseOpcode
    /// The kernel's id for the request; the reply and an INTERRUPT name it.
    public var unique: UInt64
    /// The inode the request is about (1 is the root).
    public var nodeID: UInt64
    /// The calling process's fsuid, fsgid and tgid.
    public var uid: UInt32
    public var gid: UInt32
    public var pid: UInt32
    /// Length of the extensions at the end of the request, in units of 8 bytes (security
    /// context, supplementary group; only sent when negotiated in INIT).
    public var extensionUnits: UInt16

    public init(length: UInt32, opcode: FuseOpcode, unique: UInt64, nodeID: UInt64, uid: UInt32 = 0, gid: UInt32 = 0, pid: UInt32 = 0, extensionUnits: UInt16 = 0) {
        self.length = length
        self.opcode = opcode
        self.unique = unique
        self.nodeID = nodeID
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.extensionUnits = extensionUnits
    }

    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        length = try r.u32()
        opcode = FuseOpcode(rawValue: try r.u32())
        unique = try r.u64()
        nodeID = try r.u64()
        uid = try r.u32()
        gid = try r.u32()
        pid = try r.u32()
        extensionUnits = try r.u16()
        _ = try r.u16()
    }

    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.require(Self.wireSize)
        try w.u32(length); try w.u32(opcode.rawValue); try w.u64(unique); try w.u64(nodeID)
        try w.u32(uid); try w.u32(gid); try w.u32(pid); try w.u16(extensionUnits); try w.u16(0)
    }
}

/// `fuse_out_header`: what precedes every reply written to /dev/fuse (16 bytes). `error` is 0 or
/// a negative errno; an error reply is this header alone.
public struct FuseOutHeader: FuseStruct {
    public static let wireSize = 16
    public var length: UInt32
    public var error: Int32
    public var unique: UInt64

    public init(length: UInt32, error: Int32, unique: UInt64) {
        self.length = length
        self.error = error
        self.unique = unique
    }

    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        length = try r.u32()
        error = Int32(bitPattern: try r.u32())
        unique = try r.u64()
    }

    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.require(Self.wireSize)
        try w.u32(length); try w.i32(error); try w.u64(unique)
    }
}
