import NinePWire

/// A time stamp as 9P2000.L carries it.
public struct Timestamp: Sendable, Equatable, Comparable {
    public var seconds: UInt64
    public var nanoseconds: UInt64

    public init(seconds: UInt64, nanoseconds: UInt64 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

/// What Tgetattr says about a file (the fields `valid` marks; ninepd and diod fill the basic set).
public struct FileAttributes: Sendable, Equatable {
    public var valid: UInt64
    public var qid: Qid
    /// Type and permission bits, as st_mode.
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var linkCount: UInt64
    public var rdev: UInt64
    public var size: UInt64
    public var blockSize: UInt64
    /// 512-byte blocks allocated.
    public var blocks: UInt64
    public var accessTime: Timestamp
    public var modificationTime: Timestamp
    public var changeTime: Timestamp
    public var birthTime: Timestamp
    public var generation: UInt64
    public var dataVersion: UInt64

    init(_ a: Attributes) {
        valid = a.valid
        qid = a.qid
        mode = a.mode
        uid = a.uid
        gid = a.gid
        linkCount = a.nlink
        rdev = a.rdev
        size = a.size
        blockSize = a.blockSize
        blocks = a.blocks
        accessTime = Timestamp(seconds: a.atimeSeconds, nanoseconds: a.atimeNanoseconds)
        modificationTime = Timestamp(seconds: a.mtimeSeconds, nanoseconds: a.mtimeNanoseconds)
        changeTime = Timestamp(seconds: a.ctimeSeconds, nanoseconds: a.ctimeNanoseconds)
        birthTime = Timestamp(seconds: a.btimeSeconds, nanoseconds: a.btimeNanoseconds)
        generation = a.generation
        dataVersion = a.dataVersion
    }

    public var fileType: FileType { FileType(mode: mode) }
    public var isDirectory: Bool { fileType == .directory }
    public var isSymlink: Bool { fileType == .symlink }
    public var isRegularFile: Bool { fileType == .regular }
    /// The permission bits (with set-id and sticky bits).
    public var permissions: UInt32 { mode & 0o7777 }
}

/// The file type in st_mode's S_IFMT bits.
public enum FileType: Sendable, Equatable {
    case regular, directory, symlink, fifo, socket, characterDevice, blockDevice, unknown

    public init(mode: UInt32) {
        switch mode & 0o170000 {
        case 0o100000: self = .regular
        case 0o040000: self = .directory
        case 0o120000: self = .symlink
        case 0o010000: self = .fifo
        case 0o140000: self = .socket
        case 0o020000: self = .characterDevice
        case 0o060000: self = .blockDevice
        default: self = .unknown
        }
    }
}

/// Changes for Tsetattr; fields left nil are not changed.
public struct AttributeChanges: Sendable, Equatable {
    public enum TimeChange: Sendable, Equatable {
        /// The server's current time.
        case now
        case set(Timestamp)
    }

    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    /// Truncates or extends the file.
    public var size: UInt64?
    public var accessTime: TimeChange?
    public var modificationTime: TimeChange?

    public init(
        mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, size: UInt64? = nil,
        accessTime: TimeChange? = nil, modificationTime: TimeChange? = nil
    ) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.accessTime = accessTime
        self.modificationTime = modificationTime
    }

    var wireFields: SetattrFields {
        var f = SetattrFields(valid: 0)
        if let mode { f.valid |= SetattrValid.mode; f.mode = mode }
        if let uid { f.valid |= SetattrValid.uid; f.uid = uid }
        if let gid { f.valid |= SetattrValid.gid; f.gid = gid }
        if let size { f.valid |= SetattrValid.size; f.size = size }
        switch accessTime {
        case .none: break
        case .now: f.valid |= SetattrValid.atime
        case let .set(t):
            f.valid |= SetattrValid.atime | SetattrValid.atimeSet
            f.atimeSeconds = t.seconds; f.atimeNanoseconds = t.nanoseconds
        }
        switch modificationTime {
        case .none: break
        case .now: f.valid |= SetattrValid.mtime
        case let .set(t):
            f.valid |= SetattrValid.mtime | SetattrValid.mtimeSet
            f.mtimeSeconds = t.seconds; f.mtimeNanoseconds = t.nanoseconds
        }
        return f
    }
}

/// What Tstatfs says about the file system holding a file.
public struct FileSystemStatistics: Sendable, Equatable {
    public var type: UInt32
    public var blockSize: UInt32
    public var blocks: UInt64
    public var blocksFree: UInt64
    /// Free blocks an unprivileged user may use.
    public var blocksAvailable: UInt64
    public var files: UInt64
    public var filesFree: UInt64
    public var fsid: UInt64
    public var nameLength: UInt32

    init(_ s: StatfsFields) {
        type = s.type
        blockSize = s.blockSize
        blocks = s.blocks
        blocksFree = s.blocksFree
        blocksAvailable = s.blocksAvailable
        files = s.files
        filesFree = s.filesFree
        fsid = s.fsid
        nameLength = s.nameLength
    }
}

/// One name in a directory.
public struct DirectoryEntry: Sendable, Equatable {
    public var name: String
    public var qid: Qid
    /// DT_* type of the entry (4 directory, 8 regular, 10 symlink, ...).
    public var type: UInt8
    /// Where the next Treaddir continues after this entry.
    public var offset: UInt64

    public var isDirectory: Bool { qid.isDirectory }
}

/// How a file is opened.
public enum AccessMode: Sendable {
    case read, write, readWrite

    var flags: UInt32 {
        switch self {
        case .read: OpenFlags.readOnly
        case .write: OpenFlags.writeOnly
        case .readWrite: OpenFlags.readWrite
        }
    }
}

/// Extra Tlopen/Tlcreate flags.
public struct OpenOptions: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let truncate = OpenOptions(rawValue: OpenFlags.truncate)
    public static let append = OpenOptions(rawValue: OpenFlags.append)
    public static let exclusive = OpenOptions(rawValue: OpenFlags.exclusive)
    public static let directory = OpenOptions(rawValue: OpenFlags.directory)
    public static let noFollow = OpenOptions(rawValue: OpenFlags.noFollow)
    public static let sync = OpenOptions(rawValue: OpenFlags.sync)
    public static let direct = OpenOptions(rawValue: OpenFlags.direct)
    public static let nonBlocking = OpenOptions(rawValue: OpenFlags.nonBlock)
}

/// Tlock lock kinds.
public enum LockKind: Sendable {
    case read, write, unlock

    var wire: UInt8 {
        switch self {
        case .read: LockType.read
        case .write: LockType.write
        case .unlock: LockType.unlock
        }
    }
}
