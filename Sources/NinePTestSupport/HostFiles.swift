import CNinePShims
import Glibc

// The real file system as the test sees it, independent of the server: files made and read
// with plain system calls, and host calls the Glibc module does not export (sys/xattr.h,
// sys/statfs.h) through the C target's headers.

/// Creates (or truncates) `path` holding `bytes`, with exactly `mode` (not masked by the umask).
public func makeFile(_ path: String, _ bytes: [UInt8] = [], mode: mode_t = 0o644) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    precondition(fd >= 0, "cannot create \(path): errno \(errno)")
    _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    fchmod(fd, mode)
    Glibc.close(fd)
}

public func makeDirectory(_ path: String, mode: mode_t = 0o755) {
    precondition(Glibc.mkdir(path, mode) == 0, "cannot mkdir \(path): errno \(errno)")
}

/// Every byte of `path`, or nil when it cannot be opened.
public func fileBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { Glibc.close(fd) }
    return drainDescriptor(fd)
}

/// `path` as UTF-8 text (for /proc files), or nil when it cannot be opened.
func readTextFile(_ path: String) -> String? {
    fileBytes(path).map { String(decoding: $0, as: UTF8.self) }
}

/// Reads `fd` until the end (or, for a non-blocking descriptor, until it has nothing more).
public func drainDescriptor(_ fd: Int32) -> [UInt8] {
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        result += chunk[0..<n]
    }
    return result
}

public func lstatOf(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

public func exists(_ path: String) -> Bool { lstatOf(path) != nil }

/// Linux file-type bits, spelled out (the C macros are ambiguous between Glibc and the shim).
public enum Mode {
    public static let typeMask: UInt32 = 0o170000
    public static let directory: UInt32 = 0o040000
    public static let regular: UInt32 = 0o100000
    public static let symlink: UInt32 = 0o120000
    public static let fifo: UInt32 = 0o010000
}

/// The value of extended attribute `name` of `path` (not following a final symlink), or nil
/// with the errno when it cannot be read.
public func xattrValue(_ path: String, _ name: String) -> (value: [UInt8]?, errno: Int32) {
    let fd = open(path, NINEP_O_PATH | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { return (nil, errno) }
    defer { Glibc.close(fd) }
    var buffer = [UInt8](repeating: 0, count: 65536)
    let n = buffer.withUnsafeMutableBytes { ninep_fd_getxattr(fd, name, $0.baseAddress, $0.count) }
    if n < 0 { return (nil, errno) }
    return (Array(buffer[0..<n]), 0)
}

public struct HostStatfs {
    public var type: UInt32
    public var blockSize: UInt32
    public var blocks: UInt64
    public var files: UInt64
    public var nameLength: UInt32
}

public func hostStatfs(_ path: String) -> HostStatfs? {
    var s = CNinePShims.statfs()
    guard statfs(path, &s) == 0 else { return nil }
    return HostStatfs(
        type: UInt32(truncatingIfNeeded: s.f_type), blockSize: UInt32(truncatingIfNeeded: s.f_bsize),
        blocks: UInt64(s.f_blocks), files: UInt64(s.f_files), nameLength: UInt32(truncatingIfNeeded: s.f_namelen))
}
