/// Why a byte sequence is not a valid 9P2000.L message. Decoding never traps: every input
/// either decodes or yields one of these.
public enum WireError: Error, Equatable, Sendable {
    /// The frame ends before a field that the message type requires.
    case truncated
    /// The size field is below the 7-byte header or disagrees with the frame length.
    case badSize(UInt32)
    /// The size field exceeds the negotiated msize.
    case tooLarge(size: UInt32, msize: UInt32)
    /// A type byte that is not a 9P2000.L message in the expected direction.
    case unknownType(UInt8)
    /// Bytes left over after the last field.
    case trailingBytes(Int)
    /// More than 16 walk elements (MAXWELEM).
    case tooManyWalkElements(Int)
    /// An Rread/Rreaddir/Twrite count that disagrees with the payload.
    case countMismatch
    /// The encoder ran out of room in the destination buffer.
    case noRoom

    /// The errno a server answers with when a request fails to decode.
    public var errno: UInt32 {
        switch self {
        case .tooLarge: return LinuxErrno.EMSGSIZE
        case .unknownType: return LinuxErrno.EOPNOTSUPP
        case .noRoom: return LinuxErrno.ENOMEM
        default: return LinuxErrno.EINVAL
        }
    }
}

/// Linux errno values as carried in Rlerror (the wire uses Linux numbering on every platform).
public enum LinuxErrno {
    public static let EPERM: UInt32 = 1
    public static let ENOENT: UInt32 = 2
    public static let EINTR: UInt32 = 4
    public static let EIO: UInt32 = 5
    public static let E2BIG: UInt32 = 7
    public static let EBADF: UInt32 = 9
    public static let EAGAIN: UInt32 = 11
    public static let ENOMEM: UInt32 = 12
    public static let EACCES: UInt32 = 13
    public static let EBUSY: UInt32 = 16
    public static let EEXIST: UInt32 = 17
    public static let EXDEV: UInt32 = 18
    public static let ENOTDIR: UInt32 = 20
    public static let EISDIR: UInt32 = 21
    public static let EINVAL: UInt32 = 22
    public static let EMFILE: UInt32 = 24
    public static let EFBIG: UInt32 = 27
    public static let ENOSPC: UInt32 = 28
    public static let EROFS: UInt32 = 30
    public static let ERANGE: UInt32 = 34
    public static let ENAMETOOLONG: UInt32 = 36
    public static let ENOSYS: UInt32 = 38
    public static let ENOTEMPTY: UInt32 = 39
    public static let ELOOP: UInt32 = 40
    public static let ENODATA: UInt32 = 61
    public static let EPROTO: UInt32 = 71
    public static let EMSGSIZE: UInt32 = 90
    public static let EOPNOTSUPP: UInt32 = 95
    public static let ESTALE: UInt32 = 116
}
