import NinePMemory
import CNinePShims
import NinePWire
import Glibc

/// Makes qid paths unique across every device under one export: inode numbers are unique
/// only within a file system, so a device index goes into the top 16 bits of the path.
/// The export's own device has index 0, so its qid paths are plain inode numbers.
final class QidMapper: Sendable {
    private let rootDevice: UInt64
    private let devices = AdaptiveMutex<[UInt64: UInt64]>([:])

    init(rootDevice: UInt64) {
        self.rootDevice = rootDevice
    }

    func path(device: UInt64, inode: UInt64) -> UInt64 {
        let low = inode & 0x0000_FFFF_FFFF_FFFF
        if device == rootDevice { return low }
        let index = devices.withLock { table -> UInt64 in
            if let index = table[device] { return index }
            let index = UInt64(table.count + 1) & 0xFFFF
            table[device] = index
            return index
        }
        return index << 48 | low
    }

    /// A qid from statx: the type from the mode, the path from device and inode, and the
    /// version from the birth time, so that a file deleted and recreated with the same inode
    /// number gets another qid while writes to one file do not change it.
    func qid(_ st: statx) -> Qid {
        let device = st.deviceID
        let version = UInt32(truncatingIfNeeded: UInt64(bitPattern: st.stx_btime.tv_sec)) ^ st.stx_btime.tv_nsec
        return Qid(type: QidMapper.type(mode: UInt32(st.stx_mode)), version: version, path: path(device: device, inode: st.stx_ino))
    }

    static func type(mode: UInt32) -> UInt8 {
        switch mode & FileMode.typeMask {
        case FileMode.directory: Qid.typeDir
        case FileMode.symlink: Qid.typeSymlink
        default: Qid.typeFile
        }
    }

    static func type(direntType: UInt8) -> UInt8 {
        switch direntType {
        case FileMode.direntDirectory: Qid.typeDir
        case FileMode.direntSymlink: Qid.typeSymlink
        default: Qid.typeFile
        }
    }
}

extension statx {
    /// The device number as one value (major in the high half), used for qid paths and for
    /// telling the export root apart.
    var deviceID: UInt64 { UInt64(stx_dev_major) << 32 | UInt64(stx_dev_minor) }
}
