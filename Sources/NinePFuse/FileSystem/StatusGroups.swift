import Glibc

/// The supplementary groups of a calling process, from the "Groups:" line of /proc/PID/status
/// (space-separated decimal gids): FUSE requests name only the fsuid and fsgid.
enum StatusGroups {
    /// Whether the process `pid` has `gid` among its supplementary groups ("Groups:" in
    /// /proc/PID/status). False when it cannot be read (the process is gone).
    static func contains(process pid: UInt32, gid: UInt32) -> Bool {
        // Not a hot path: access(2) and chdir(2) without default_permissions.
        let fd = Glibc.open("/proc/\(pid)/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let size = 8192
        let text = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
        defer { text.deallocate() }
        var length = 0
        while length < size {
            let n = Glibc.read(fd, text.baseAddress! + length, size - length)
            if n <= 0 { break }
            length += n
        }
        return StatusGroups.contains(UnsafeRawBufferPointer(rebasing: text[0..<length]), gid)
    }

    /// Whether the "Groups:" line of the text of a status file lists `gid`.
    static func contains(_ status: UnsafeRawBufferPointer, _ gid: UInt32) -> Bool {
        let key = Array("\nGroups:".utf8)
        var i = 0
        while i + key.count <= status.count {
            var match = true
            for j in 0..<key.count where status[i + j] != key[j] {
                match = false
                break
            }
            if match { break }
            i += 1
        }
        guard i + key.count <= status.count else { return false }
        i += key.count
        var value: UInt64 = 0
        var inNumber = false
        while i < status.count && status[i] != UInt8(ascii: "\n") {
            let c = status[i]
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                value = value * 10 + UInt64(c - UInt8(ascii: "0"))
                inNumber = true
            } else {
                if inNumber && value == UInt64(gid) { return true }
                value = 0
                inNumber = false
            }
            i += 1
        }
        return inNumber && value == UInt64(gid)
    }
}
