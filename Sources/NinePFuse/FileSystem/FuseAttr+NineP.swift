import NinePClient
import NinePWire

extension FuseAttr {
    /// The kernel's view of what Tgetattr said.
    init(_ a: FileAttributes) {
        self.init()
        ino = a.qid.path
        size = a.size
        blocks = a.blocks
        atime = a.accessTime.seconds
        atimeNanoseconds = UInt32(truncatingIfNeeded: a.accessTime.nanoseconds)
        mtime = a.modificationTime.seconds
        mtimeNanoseconds = UInt32(truncatingIfNeeded: a.modificationTime.nanoseconds)
        ctime = a.changeTime.seconds
        ctimeNanoseconds = UInt32(truncatingIfNeeded: a.changeTime.nanoseconds)
        mode = a.mode
        nlink = UInt32(clamping: a.linkCount)
        uid = a.uid
        gid = a.gid
        rdev = DeviceNumber(linux: a.rdev).fuseEncoding
        blockSize = UInt32(clamping: a.blockSize)
    }
}

/// A device number in the encodings on either side: 9P2000.L carries glibc's 64-bit dev_t, FUSE
/// the kernel's 32-bit "new" encoding (minor's low byte, major, minor's high bits).
struct DeviceNumber: Equatable {
    var major: UInt32
    var minor: UInt32

    init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    init(linux dev: UInt64) {
        major = UInt32(truncatingIfNeeded: ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff))
        minor = UInt32(truncatingIfNeeded: (dev & 0xff) | ((dev >> 12) & ~0xff))
    }

    init(fuse dev: UInt32) {
        major = (dev & 0xfff00) >> 8
        minor = (dev & 0xff) | ((dev >> 12) & 0xfff00)
    }

    var fuseEncoding: UInt32 { (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12) }
}

/// The DT_* type of a directory entry from its qid (what Treaddir's type byte also says; the
/// qid is the fallback when a server sends 0).
func direntType(_ entry: DirEntry) -> UInt32 {
    if entry.type != 0 { return UInt32(entry.type) }
    if entry.qid.isDirectory { return 4 }
    if entry.qid.isSymlink { return 10 }
    return 8
}
