import CNinePShims
import Glibc

/// Allocation that is allowed to fail. Swift traps when malloc returns NULL, so code that must
/// allocate beyond the preallocated tables (a connection beyond the table, a fid table that
/// grows) first asks malloc itself for the bytes it is about to use: if malloc says no, the
/// caller answers with an error instead of trapping. The probe's memory is freed at once and
/// the real allocation follows; under real exhaustion that leaves a small window, which is why
/// the steady state never takes this path.
public enum MemoryProbe {
    public static func canAllocate(bytes: Int) -> Bool {
        // In C, where the malloc/free pair cannot be optimised away as it would be here.
        ninep_can_allocate(max(bytes, 1)) != 0
    }
}

/// Process-wide memory hardening for daemons.
public enum MemoryHardening {
    /// mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT): pages are locked as they are
    /// touched, so idle thread stacks and reserved heap do not become resident. Returns
    /// errno on failure, 0 on success.
    public static func lockAll() -> Int32 {
        let onFault: Int32 = 4  // MCL_ONFAULT (Linux 4.4), not exported without _GNU_SOURCE
        return mlockall(MCL_CURRENT | MCL_FUTURE | onFault) == 0 ? 0 : errno
    }

    /// Bounds what glibc's malloc keeps after free: at most two arenas, and a fixed mmap and
    /// trim threshold of 128 KiB. By default glibc makes an arena per thread up to 8 per core
    /// and raises both thresholds when a large block is freed (to 2x its size, up to 64 MiB),
    /// so each arena may keep megabytes it no longer uses: in the mount daemon (20 threads,
    /// 1 MiB buffers) that let the heap grow by 8 MiB under load, memory a 64 MiB cgroup does
    /// not have. Nothing on the request path allocates, so fewer arenas cost no contention
    /// there. Call it first thing, before the threads start.
    public static func boundHeapRetention() {
        ninep_bound_heap_retention(2, 128 * 1024)
    }

    /// Writes /proc/self/oom_score_adj; returns errno on failure, 0 on success.
    public static func setOOMScoreAdjustment(_ value: Int) -> Int32 {
        let fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        let text = Array("\(value)\n".utf8)
        let written = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return written == text.count ? 0 : errno
    }
}
