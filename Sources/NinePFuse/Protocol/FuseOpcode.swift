/// The operation a FUSE request asks for (`fuse_in_header.opcode`). Numbers are the kernel's
/// (include/uapi/linux/fuse.h); the ones this daemon does not serve still decode, so that it can
/// answer ENOSYS and the kernel stops sending them.
public struct FuseOpcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let lookup = FuseOpcode(rawValue: 1)
    public static let forget = FuseOpcode(rawValue: 2)
    public static let getattr = FuseOpcode(rawValue: 3)
    public static let setattr = FuseOpcode(rawValue: 4)
    public static let readlink = FuseOpcode(rawValue: 5)
    public static let symlink = FuseOpcode(rawValue: 6)
    public static let mknod = FuseOpcode(rawValue: 8)
    public static let mkdir = FuseOpcode(rawValue: 9)
    public static let unlink = FuseOpcode(rawValue: 10)
    public static let rmdir = FuseOpcode(rawValue: 11)
    public static let rename = FuseOpcode(rawValue: 12)
    public static let link = FuseOpcode(rawValue: 13)
    public static let open = FuseOpcode(rawValue: 14)
    public static let read = FuseOpcode(rawValue: 15)
    public static let write = FuseOpcode(rawValue: 16)
    public static let statfs = FuseOpcode(rawValue: 17)
    public static let release = FuseOpcode(rawValue: 18)
    public static let fsync = FuseOpcode(rawValue: 20)
    public static let setxattr = FuseOpcode(rawValue: 21)
    public static let getxattr = FuseOpcode(rawValue: 22)
    public static let listxattr = FuseOpcode(rawValue: 23)
    public static let removexattr = FuseOpcode(rawValue: 24)
    public static let flush = FuseOpcode(rawValue: 25)
    public static let `init` = FuseOpcode(rawValue: 26)
    public static let opendir = FuseOpcode(rawValue: 27)
    public static let readdir = FuseOpcode(rawValue: 28)
    public static let releasedir = FuseOpcode(rawValue: 29)
    public static let fsyncdir = FuseOpcode(rawValue: 30)
    public static let getlk = FuseOpcode(rawValue: 31)
    public static let setlk = FuseOpcode(rawValue: 32)
    public static let setlkw = FuseOpcode(rawValue: 33)
    public static let access = FuseOpcode(rawValue: 34)
    public static let create = FuseOpcode(rawValue: 35)
    public static let interrupt = FuseOpcode(rawValue: 36)
    public static let bmap = FuseOpcode(rawValue: 37)
    public static let destroy = FuseOpcode(rawValue: 38)
    public static let ioctl = FuseOpcode(rawValue: 39)
    public static let poll = FuseOpcode(rawValue: 40)
    public static let notifyReply = FuseOpcode(rawValue: 41)
    public static let batchForget = FuseOpcode(rawValue: 42)
    public static let fallocate = FuseOpcode(rawValue: 43)
    public static let readdirplus = FuseOpcode(rawValue: 44)
    public static let rename2 = FuseOpcode(rawValue: 45)
    public static let lseek = FuseOpcode(rawValue: 46)
    public static let copyFileRange = FuseOpcode(rawValue: 47)
    public static let syncfs = FuseOpcode(rawValue: 50)
    public static let tmpfile = FuseOpcode(rawValue: 51)
    public static let statx = FuseOpcode(rawValue: 52)

    /// Requests the kernel sends without waiting for an answer: replying to them is an error.
    public var expectsReply: Bool { self != .forget && self != .batchForget }

    public var description: String {
        switch self {
        case .lookup: "LOOKUP"
        case .forget: "FORGET"
        case .getattr: "GETATTR"
        case .setattr: "SETATTR"
        case .readlink: "READLINK"
        case .symlink: "SYMLINK"
        case .mknod: "MKNOD"
        case .mkdir: "MKDIR"
        case .unlink: "UNLINK"
        case .rmdir: "RMDIR"
        case .rename: "RENAME"
        case .link: "LINK"
        case .open: "OPEN"
        case .read: "READ"
        case .write: "WRITE"
        case .statfs: "STATFS"
        case .release: "RELEASE"
        case .fsync: "FSYNC"
        case .setxattr: "SETXATTR"
        case .getxattr: "GETXATTR"
        case .listxattr: "LISTXATTR"
        case .removexattr: "REMOVEXATTR"
        case .flush: "FLUSH"
        case .`init`: "INIT"
        case .opendir: "OPENDIR"
        case .readdir: "READDIR"
        case .releasedir: "RELEASEDIR"
        case .fsyncdir: "FSYNCDIR"
        case .getlk: "GETLK"
        case .setlk: "SETLK"
        case .setlkw: "SETLKW"
        case .access: "ACCESS"
        case .create: "CREATE"
        case .interrupt: "INTERRUPT"
        case .destroy: "DESTROY"
        case .batchForget: "BATCH_FORGET"
        case .fallocate: "FALLOCATE"
        case .readdirplus: "READDIRPLUS"
        case .rename2: "RENAME2"
        default: "opcode \(rawValue)"
        }
    }
}
