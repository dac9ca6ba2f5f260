import Glibc

/// pread and pwrite of regular files that ride out a transient shortage of memory.
///
/// In a memory cgroup at its limit, the page cache pages a read or write needs are charged to
/// the cgroup; when reclaim finds nothing and the OOM killer has no one to kill (ninepd at
/// oom_score_adj -1000 and the previous victim still exiting), the call fails with ENOMEM,
/// or stops short after the pages it got. Both pass in milliseconds, once the victim's memory
/// is freed. A client takes an error for a failed IO and a short read of a regular file for
/// its end, so neither may reach it: ENOMEM is retried with a bounded backoff, and a short read
/// goes on from where it stopped until the count is full, the file ends, or an error comes
/// after some bytes (then the bytes read are the answer, as before).
enum PositionalIO {
    /// Delays between ENOMEM retries grow from 1 ms to this, about 1 s in all.
    static let longestBackoffNanoseconds = 64_000_000
    static let memoryRetries = 20

    /// Reads up to `length` bytes at `offset`; -1 with errno set when nothing could be read.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawPointer?, length: Int, at offset: UInt64) -> Int {
        guard let base = buffer, length > 0 else { return 0 }
        return transfer(length) { done in
            pread(fd, base + done, length - done, off_t(Int64(bitPattern: offset &+ UInt64(done))))
        }
    }

    /// Writes `length` bytes at `offset`; what was written, or -1 with errno set when nothing
    /// could be.
    static func write(_ fd: Int32, from buffer: UnsafeRawPointer?, length: Int, at offset: UInt64) -> Int {
        guard let base = buffer, length > 0 else { return 0 }
        return transfer(length) { done in
            pwrite(fd, base + done, length - done, off_t(Int64(bitPattern: offset &+ UInt64(done))))
        }
    }

    /// The loop both share: `call(done)` moves the bytes from `done` on. EINTR repeats it,
    /// ENOMEM backs off and repeats it, a short count continues, 0 ends; an error after some
    /// bytes answers those bytes. (A non-escaping closure: inlined, nothing allocated.)
    @inline(__always)
    private static func transfer(_ length: Int, _ call: (_ done: Int) -> Int) -> Int {
        var done = 0
        var retries = 0
        while done < length {
            let n = call(done)
            if n > 0 {
                done += n
                continue
            }
            if n == 0 { break }
            let code = errno
            if code == EINTR { continue }
            if code == ENOMEM && retries < memoryRetries {
                backOff(retries)
                retries += 1
                continue
            }
            if done > 0 { break }
            errno = code
            return -1
        }
        return done
    }

    private static func backOff(_ attempt: Int) {
        let nanoseconds = min(1_000_000 << min(attempt, 16), longestBackoffNanoseconds)
        var delay = timespec(tv_sec: 0, tv_nsec: nanoseconds)
        var left = timespec()
        while nanosleep(&delay, &left) != 0 && errno == EINTR { delay = left }
    }
}
