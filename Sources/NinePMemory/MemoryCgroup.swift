import Glibc

/// The memory limit of the cgroup this process runs in, cgroup v1 or v2, read once at start-up.
///
/// Why it matters: in a memory cgroup, dirty page cache counts against the limit, and under
/// cgroup v1 the kernel's dirty throttling does not look at the cgroup. A server that writes
/// fast can fill its cgroup with dirty pages that reclaim cannot free quickly, and the OOM
/// killer ends it. ninepd starts writeback of large writes at once in that case (write-behind).
public enum MemoryCgroup {
    /// The smallest limit on the path from this process's memory cgroup up to the root, in
    /// bytes; nil when there is none (or no memory controller is mounted).
    public static func limitBytes() -> Int? {
        guard let membership = readSmallFile("/proc/self/cgroup") else { return nil }
        var smallest: Int? = nil
        for line in membership.split(separator: "\n") {
            // "ID:CONTROLLERS:PATH"; v1 names "memory", v2 is "0::PATH".
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = fields[1].split(separator: ",")
            let candidates: [(root: String, file: String)]
            if controllers.contains("memory") {
                candidates = [("/sys/fs/cgroup/memory", "memory.limit_in_bytes")]
            } else if fields[0] == "0" && fields[1].isEmpty {
                candidates = [("/sys/fs/cgroup", "memory.max"), ("/sys/fs/cgroup/unified", "memory.max")]
            } else {
                continue
            }
            for candidate in candidates {
                var path = String(fields[2])
                while true {
                    let directory = path == "/" ? candidate.root : candidate.root + path
                    if let text = readSmallFile(directory + "/" + candidate.file),
                       let value = Int(text.split(separator: "\n").first ?? "") {
                        smallest = min(smallest ?? value, value)
                    }
                    if path == "/" || path.isEmpty { break }
                    path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
                    if path.isEmpty { path = "/" }
                }
            }
        }
        // v1 writes "no limit" as the largest page-aligned Int64: treat anything beyond the
        // machine's memory as none.
        guard let smallest, smallest < physicalMemoryBytes() else { return nil }
        return smallest
    }

    /// Installed memory (sysconf), the bound beyond which a cgroup limit does not limit.
    public static func physicalMemoryBytes() -> Int {
        sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 8192)
        var used = 0
        while used < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + used, $0.count - used) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            used += n
        }
        return String(decoding: bytes[..<used], as: UTF8.self)
    }
}
