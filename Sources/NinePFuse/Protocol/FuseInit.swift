/// INIT flags (`fuse_init_in.flags` | `flags2` << 32, and the same in `fuse_init_out`). The
/// daemon answers with the subset it wants of what the kernel offered.
public struct FuseInitFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let asyncRead = FuseInitFlags(rawValue: 1 << 0)
    public static let posixLocks = FuseInitFlags(rawValue: 1 << 1)
    public static let atomicOTrunc = FuseInitFlags(rawValue: 1 << 3)
    public static let exportSupport = FuseInitFlags(rawValue: 1 << 4)
    public static let bigWrites = FuseInitFlags(rawValue: 1 << 5)
    public static let dontMask = FuseInitFlags(rawValue: 1 << 6)
    public static let flockLocks = FuseInitFlags(rawValue: 1 << 10)
    public static let autoInvalData = FuseInitFlags(rawValue: 1 << 12)
    public static let doReaddirplus = FuseInitFlags(rawValue: 1 << 13)
    public static let readdirplusAuto = FuseInitFlags(rawValue: 1 << 14)
    public static let asyncDIO = FuseInitFlags(rawValue: 1 << 15)
    public static let writebackCache = FuseInitFlags(rawValue: 1 << 16)
    public static let parallelDirops = FuseInitFlags(rawValue: 1 << 18)
    public static let handleKillpriv = FuseInitFlags(rawValue: 1 << 19)
    public static let posixACL = FuseInitFlags(rawValue: 1 << 20)
    public static let abortError = FuseInitFlags(rawValue: 1 << 21)
    public static let maxPages = FuseInitFlags(rawValue: 1 << 22)
    public static let cacheSymlinks = FuseInitFlags(rawValue: 1 << 23)
    public static let noOpendirSupport = FuseInitFlags(rawValue: 1 << 24)
    public static let explicitInvalData = FuseInitFlags(rawValue: 1 << 25)
    public static let handleKillprivV2 = FuseInitFlags(rawValue: 1 << 28)
    public static let setxattrExt = FuseInitFlags(rawValue: 1 << 29)
    /// The second word of flags is present (protocol 7.36 and later).
    public static let initExt = FuseInitFlags(rawValue: 1 << 30)
    public static let securityContext = FuseInitFlags(rawValue: 1 << 32)
    public static let createSupplementaryGroup = FuseInitFlags(rawValue: 1 << 34)
    public static let directIOAllowMmap = FuseInitFlags(rawValue: 1 << 36)
    public static let passthrough = FuseInitFlags(rawValue: 1 << 37)
    public static let noExportSupport = FuseInitFlags(rawValue: 1 << 38)
    public static let hasResend = FuseInitFlags(rawValue: 1 << 39)
    public static let requestTimeout = FuseInitFlags(rawValue: 1 << 42)
}

/// The protocol version this codec speaks; INIT settles on the lower of this and the kernel's.
public enum FuseProtocol {
    public static let major: UInt32 = 7
    public static let minor: UInt32 = 45
    /// The oldest minor the session accepts: 7.31 brought max_pages and the 64-byte INIT reply
    /// layout this daemon relies on (every kernel since 5.3).
    public static let oldestMinor: UInt32 = 31
    /// The smallest buffer the kernel accepts for a read of /dev/fuse (FUSE_MIN_READ_BUFFER).
    public static let minimumReadBuffer = 8192
    /// The node id of the mount's root.
    public static let rootID: UInt64 = 1
}

/// `fuse_init_in`: 16 bytes before protocol 7.36, 64 since (flags2 and reserved words).
public struct FuseInitIn: FuseStruct {
    public static let wireSize = 64
    /// The size kernels before 7.36 send.
    public static let compatibleSize = 16
    public var major: UInt32
    public var minor: UInt32
    public var maxReadahead: UInt32
    public var flags: FuseInitFlags

    public init(major: UInt32, minor: UInt32, maxReadahead: UInt32, flags: FuseInitFlags) {
        self.major = major
        self.minor = minor
        self.maxReadahead = maxReadahead
        self.flags = flags
    }

    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.compatibleSize)
        major = try r.u32(); minor = try r.u32(); maxReadahead = try r.u32()
        var bits = UInt64(try r.u32())
        // A kernel too old for the second word sends 16 bytes and no FUSE_INIT_EXT; one that
        // sets FUSE_INIT_EXT sends the whole 64-byte struct. Reserved words are ignored.
        if bits & FuseInitFlags.initExt.rawValue != 0 {
            try r.require(Self.wireSize - Self.compatibleSize)
            bits |= UInt64(try r.u32()) << 32
        }
        flags = FuseInitFlags(rawValue: bits)
        try r.skip(r.remaining)
    }

    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.require(Self.wireSize)
        try w.u32(major); try w.u32(minor); try w.u32(maxReadahead)
        try w.u32(UInt32(truncatingIfNeeded: flags.rawValue)); try w.u32(UInt32(truncatingIfNeeded: flags.rawValue >> 32))
        try w.zeros(44)
    }
}

/// `fuse_init_out` (64 bytes since 7.23; fields after max_write are read by kernels that know them).
public struct FuseInitOut: FuseStruct {
    public static let wireSize = 64
    public var major: UInt32 = FuseProtocol.major
    public var minor: UInt32 = FuseProtocol.minor
    public var maxReadahead: UInt32 = 0
    public var flags: FuseInitFlags = []
    /// Background requests (readahead, async direct IO) the kernel may have queued at once.
    public var maxBackground: UInt16 = 0
    public var congestionThreshold: UInt16 = 0
    public var maxWrite: UInt32 = 0
    /// Time stamp granularity in nanoseconds (1: the server keeps nanoseconds).
    public var timeGranularity: UInt32 = 1
    /// Largest READ/WRITE in pages, with `FuseInitFlags.maxPages`.
    public var maxPages: UInt16 = 0
    public var mapAlignment: UInt16 = 0
    public var maxStackDepth: UInt32 = 0
    public var requestTimeout: UInt16 = 0

    public init() {}

    public init(reading r: inout FuseReaderCursor) throws(FuseCodecError) {
        try r.require(Self.wireSize)
        major = try r.u32(); minor = try r.u32(); maxReadahead = try r.u32()
        var bits = UInt64(try r.u32())
        maxBackground = try r.u16(); congestionThreshold = try r.u16()
        maxWrite = try r.u32(); timeGranularity = try r.u32()
        maxPages = try r.u16(); mapAlignment = try r.u16()
        bits |= UInt64(try r.u32()) << 32
        flags = FuseInitFlags(rawValue: bits)
        maxStackDepth = try r.u32(); requestTimeout = try r.u16()
        try r.skip(22)
    }

    public func write(to w: inout FuseWriter) throws(FuseCodecError) {
        try w.require(Self.wireSize)
        try w.u32(major); try w.u32(minor); try w.u32(maxReadahead)
        try w.u32(UInt32(truncatingIfNeeded: flags.rawValue))
        try w.u16(maxBackground); try w.u16(congestionThreshold)
        try w.u32(maxWrite); try w.u32(timeGranularity)
        try w.u16(maxPages); try w.u16(mapAlignment)
        try w.u32(UInt32(truncatingIfNeeded: flags.rawValue >> 32))
        try w.u32(maxStackDepth); try w.u16(requestTimeout)
        try w.zeros(22)
    }
}
