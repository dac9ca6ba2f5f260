import Glibc

/// `-o passthrough=`: whether the mount hands granted descriptors to the kernel (FUSE
/// passthrough: reads, writes and mmap of an open file go straight to the server's file,
/// no READ or WRITE reaching this daemon). docs/LOCALIO.md, "ninep mount".
public enum PassthroughMode: String, Sendable, CaseIterable {
    /// Passthrough where it can be had (a unix socket to a server that proved localio, and
    /// CAP_SYS_ADMIN in the initial user namespace); with grants but without the capability,
    /// the daemon's own workers read and write the granted descriptors; otherwise 9P.
    case auto
    /// Passthrough or no mount: mounting fails, saying why, when it cannot be had.
    case on
    /// Every byte through 9P (the mount does not even offer localio to the server).
    case off
}

/// Whether the kernel lets this process register backing files (FUSE_DEV_IOC_BACKING_OPEN
/// checks CAP_SYS_ADMIN in the initial user namespace, not the mount's).
enum PassthroughCapability {
    /// CAP_SYS_ADMIN (bit 21) in the effective set, and the initial user namespace.
    static var present: Bool { missingReason == nil }

    /// Why passthrough cannot be had by this process, or nil.
    static var missingReason: String? {
        guard let status = readSmallFile("/proc/self/status") else { return "cannot read /proc/self/status" }
        var effective: UInt64? = nil
        for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
            effective = UInt64(line.dropFirst("CapEff:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" }), radix: 16)
        }
        guard let effective, effective & (1 << 21) != 0 else {
            return "FUSE passthrough needs CAP_SYS_ADMIN (run the mount as root)"
        }
        // The initial user namespace has a fixed inode number (PROC_USER_INIT_INO).
        var link = [CChar](repeating: 0, count: 64)
        let n = readlink("/proc/self/ns/user", &link, link.count - 1)
        if n > 0 {
            let name = String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if name != "user:[4026531837]" {
                return "FUSE passthrough needs CAP_SYS_ADMIN in the initial user namespace; this process runs in \(name)"
            }
        }
        return nil
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 8192)
        var total = 0
        while total < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            total += n
        }
        return String(decoding: bytes[0..<total], as: UTF8.self)
    }
}
