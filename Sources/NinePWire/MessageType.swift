/// The 9P2000.L message types (include/net/9p/9p.h numbering). T-messages are even, their
/// R-message is the next odd number. One more reply: 9P2000.u's Rerror, which other servers
/// answer with (decoded by clients, never sent by ninepd; Terror does not exist).
public enum MessageType: UInt8, Sendable, CaseIterable {
    case tlerror = 6, rlerror = 7
    case tstatfs = 8, rstatfs = 9
    case tlopen = 12, rlopen = 13
    case tlcreate = 14, rlcreate = 15
    case tsymlink = 16, rsymlink = 17
    case tmknod = 18, rmknod = 19
    case trename = 20, rrename = 21
    case treadlink = 22, rreadlink = 23
    case tgetattr = 24, rgetattr = 25
    case tsetattr = 26, rsetattr = 27
    case txattrwalk = 30, rxattrwalk = 31
    case txattrcreate = 32, rxattrcreate = 33
    case treaddir = 40, rreaddir = 41
    case tfsync = 50, rfsync = 51
    case tlock = 52, rlock = 53
    case tgetlock = 54, rgetlock = 55
    case tlink = 70, rlink = 71
    case tmkdir = 72, rmkdir = 73
    case trenameat = 74, rrenameat = 75
    case tunlinkat = 76, runlinkat = 77
    case tversion = 100, rversion = 101
    case tauth = 102, rauth = 103
    case tattach = 104, rattach = 105
    case tflush = 108, rflush = 109
    case twalk = 110, rwalk = 111
    case tread = 116, rread = 117
    case twrite = 118, rwrite = 119
    case tclunk = 120, rclunk = 121
    case tremove = 122, rremove = 123
    case rerror = 107
    // The localio extension (docs/LOCALIO.md): only on a session that negotiated
    // `NineP.versionLocalIO`, in a range no 9P dialect uses (9P2000/.u/.L stop at 127,
    // 9P2000.e uses 150-155).
    case tlocalproof = 180, rlocalproof = 181
    case tlocalgrant = 182, rlocalgrant = 183
    case tlocalrevoke = 184, rlocalrevoke = 185
}

/// Protocol-wide constants.
public enum NineP {
    /// size[4] type[1] tag[2]
    public static let headerSize = 7
    /// The tag of Tversion/Rversion; never allocated to other requests.
    public static let noTag: UInt16 = 0xFFFF
    /// afid of a Tattach without authentication.
    public static let noFid: UInt32 = 0xFFFF_FFFF
    /// n_uname when the client names the user only by string.
    public static let noUid: UInt32 = 0xFFFF_FFFF
    /// Most elements in one Twalk.
    public static let maxWalkElements = 16
    /// Rread header: size[4] type[1] tag[2] count[4].
    public static let readReplyOverhead = 11
    /// Twrite header: size[4] type[1] tag[2] fid[4] offset[8] count[4].
    public static let writeRequestOverhead = 23
    /// Rreaddir header is the same as Rread's.
    public static let readdirReplyOverhead = 11
    public static let version9P2000L = "9P2000.L"
    /// The localio extension's version string (docs/LOCALIO.md): offered only on unix sockets;
    /// a server that does not know it answers 9P2000.L or "unknown".
    public static let versionLocalIO: StaticString = "9P2000.L.ninep.1"
    /// Bytes of the locality nonce (Tlocalproof nonce[32]).
    public static let localNonceSize = 32
    /// Most fids one Rlocalrevoke names.
    public static let maxRevokedFids = 1024
}

/// Tgetattr request_mask / Rgetattr valid bits.
public enum GetattrMask {
    public static let mode: UInt64 = 0x0000_0001
    public static let nlink: UInt64 = 0x0000_0002
    public static let uid: UInt64 = 0x0000_0004
    public static let gid: UInt64 = 0x0000_0008
    public static let rdev: UInt64 = 0x0000_0010
    public static let atime: UInt64 = 0x0000_0020
    public static let mtime: UInt64 = 0x0000_0040
    public static let ctime: UInt64 = 0x0000_0080
    public static let ino: UInt64 = 0x0000_0100
    public static let size: UInt64 = 0x0000_0200
    public static let blocks: UInt64 = 0x0000_0400
    public static let btime: UInt64 = 0x0000_0800
    public static let gen: UInt64 = 0x0000_1000
    public static let dataVersion: UInt64 = 0x0000_2000
    public static let basic: UInt64 = 0x0000_07ff
    public static let all: UInt64 = 0x0000_3fff
}

/// Tsetattr valid bits.
public enum SetattrValid {
    public static let mode: UInt32 = 0x0001
    public static let uid: UInt32 = 0x0002
    public static let gid: UInt32 = 0x0004
    public static let size: UInt32 = 0x0008
    public static let atime: UInt32 = 0x0010
    public static let mtime: UInt32 = 0x0020
    public static let ctime: UInt32 = 0x0040
    public static let atimeSet: UInt32 = 0x0080
    public static let mtimeSet: UInt32 = 0x0100
}

/// Tlock/Tgetlock lock types and Rlock status values.
public enum LockType {
    public static let read: UInt8 = 0
    public static let write: UInt8 = 1
    public static let unlock: UInt8 = 2
}

public enum LockStatus {
    public static let success: UInt8 = 0
    public static let blocked: UInt8 = 1
    public static let error: UInt8 = 2
    public static let grace: UInt8 = 3
}

public enum LockFlags {
    public static let block: UInt32 = 1
    public static let reclaim: UInt32 = 2
}

/// Tlopen/Tlcreate flags (P9_DOTL_*). They equal the generic Linux values, but a server must
/// translate them explicitly so that architectures with other O_* numbering stay correct.
public enum OpenFlags {
    public static let accessMode: UInt32 = 0o3
    public static let readOnly: UInt32 = 0o0
    public static let writeOnly: UInt32 = 0o1
    public static let readWrite: UInt32 = 0o2
    public static let noAccess: UInt32 = 0o3
    public static let create: UInt32 = 0o100
    public static let exclusive: UInt32 = 0o200
    public static let noCTTY: UInt32 = 0o400
    public static let truncate: UInt32 = 0o1000
    public static let append: UInt32 = 0o2000
    public static let nonBlock: UInt32 = 0o4000
    public static let dsync: UInt32 = 0o10000
    public static let fasync: UInt32 = 0o20000
    public static let direct: UInt32 = 0o40000
    public static let largeFile: UInt32 = 0o100000
    public static let directory: UInt32 = 0o200000
    public static let noFollow: UInt32 = 0o400000
    public static let noAtime: UInt32 = 0o1000000
    public static let closeOnExec: UInt32 = 0o2000000
    public static let sync: UInt32 = 0o4000000
}

/// Tunlinkat flags.
public enum UnlinkFlags {
    public static let removeDir: UInt32 = 0x200
}
