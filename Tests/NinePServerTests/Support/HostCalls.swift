import CNinePShims
import Glibc

// Host calls the Glibc module does not export (sys/xattr.h, sys/statfs.h), through the C
// target's headers: the test's own view of the file system, independent of the server.

/// The value of extended attribute `name` of `path` (not following a final symlink), or nil
/// with the errno when it cannot be read.
func xattrValue(_ path: String, _ name: String) -> (value: [UInt8]?, errno: Int32) {
    let fd = open(path, NINEP_O_PATH | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { return (nil, errno) }
    defer { Glibc.close(fd) }
    var buffer = [UInt8](repeating: 0, count: 65536)
    let n = buffer.withUnsafeMutableBytes { ninep_fd_getxattr(fd, name, $0.baseAddress, $0.count) }
    if n < 0 { return (nil, errno) }
    return (Array(buffer[0..<n]), 0)
}

struct HostStatfs {
    var type: UInt32
    var blockSize: UInt32
    var blocks: UInt64
    var files: UInt64
    var nameLength: UInt32
}

func hostStatfs(_ path: String) -> HostStatfs? {
    var s = CNinePShims.statfs()
    guard statfs(path, &s) == 0 else { return nil }
    return HostStatfs(
        type: UInt32(truncatingIfNeeded: s.f_type), blockSize: UInt32(truncatingIfNeeded: s.f_bsize),
        blocks: UInt64(s.f_blocks), files: UInt64(s.f_files), nameLength: UInt32(truncatingIfNeeded: s.f_namelen))
}
