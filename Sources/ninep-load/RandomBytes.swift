import Glibc

/// `count` random bytes from /dev/urandom (as Python's os.urandom; a byte at a time through
/// Swift's generator takes seconds for a few MiB in a debug build).
func randomBytes(_ count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
    defer { if fd >= 0 { close(fd) } }
    var done = 0
    bytes.withUnsafeMutableBytes { buffer in
        while fd >= 0 && done < count {
            let n = read(fd, buffer.baseAddress! + done, count - done)
            if n > 0 {
                done += n
            } else if n == 0 || errno != EINTR {
                break
            }
        }
    }
    // Without /dev/urandom (never where these scripts run), any bytes do for these payloads.
    var generator = SystemRandomNumberGenerator()
    for i in done..<count { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
    return bytes
}
