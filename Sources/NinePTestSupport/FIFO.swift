import Glibc

/// A named pipe for requests that wait on the outside world: a read of an empty FIFO, a write
/// to a full one, an open with no peer. The test's own end (`holdOpen()`, non-blocking) fills
/// or drains it from the host side.
public final class FIFO {
    public let path: String
    /// The test's descriptor (O_RDWR | O_NONBLOCK), or -1 until `holdOpen()`.
    public private(set) var fd: Int32 = -1

    /// Makes the FIFO at `path`.
    public init(_ path: String, mode: mode_t = 0o666) throws {
        self.path = path
        guard mkfifo(path, mode) == 0 else { throw TestFailure("mkfifo \(path): errno \(errno)") }
    }

    deinit { close() }

    /// Opens the test's end: from now on the FIFO has a reader and a writer (an open of it
    /// by the server no longer waits for a peer).
    public func holdOpen() throws {
        guard fd < 0 else { return }
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw TestFailure("open \(path): errno \(errno)") }
    }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Fills the pipe until it takes no byte more (big writes, then single bytes); how many
    /// bytes it holds.
    public func fill(with byte: UInt8 = UInt8(ascii: "F")) throws -> Int {
        try holdOpen()
        var filled = 0
        let chunk = [UInt8](repeating: byte, count: 65536)
        for size in [65536, 4096, 1] {
            while true {
                let n = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, size) }
                if n <= 0 { break }
                filled += n
            }
        }
        return filled
    }

    /// Everything the pipe holds now.
    public func drain() throws -> [UInt8] {
        try holdOpen()
        return drainDescriptor(fd)
    }
}
