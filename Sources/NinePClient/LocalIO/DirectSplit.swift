import Glibc

/// Reads and writes through an O_DIRECT grant (docs/LOCALIO.md). O_DIRECT wants the file
/// offset, the length and the memory address aligned to the device's logical block (4096 is
/// safe everywhere); 9P's callers ask for any bytes at any offset. So a request is split:
///
///     [offset ........ a)[a ............... b)[b ........ end)
///      buffered head      aligned, O_DIRECT     buffered tail
///
/// The head and tail go through a second descriptor of the same file without O_DIRECT (the
/// grant reopened through /proc/self/fd, see `LocalGrant`), the middle through the direct
/// one. No read-modify-write of partial blocks: two writers of neighbouring bytes in one
/// block would otherwise undo each other. The kernel keeps the two coherent: a direct read or
/// write first writes back and then drops the page cache of its range. A middle whose memory
/// is not aligned goes through an aligned bounce buffer (allocated per request: only
/// misaligned callers pay for it).
enum DirectSplit {
    static let block = 4096

    /// Bytes read (short at the end of the file), or -errno.
    static func read(direct: Int32, buffered: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) async -> Int {
        await transfer(direct: direct, buffered: buffered, buffer, at: offset, write: false)
    }

    /// Bytes written, or -errno.
    static func write(direct: Int32, buffered: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) async -> Int {
        // Only read from: a write's buffer is never written.
        await transfer(direct: direct, buffered: buffered, UnsafeMutableRawBufferPointer(mutating: bytes), at: offset, write: true)
    }

    /// Head, middle and tail in turn. A failure after some bytes moved: a write answers the
    /// bytes written (as write(2) does, the caller goes on from there), a read the error (a
    /// short read would be taken for the end of the file).
    private static func transfer(direct: Int32, buffered: Int32, _ buffer: UnsafeMutableRawBufferPointer, at offset: Int64, write: Bool) async -> Int {
        guard buffer.count > 0 else { return 0 }
        let (a, b) = bounds(offset, buffer.count)
        if a >= b { return LocalIOThreads.perform(fd: buffered, buffer.baseAddress!, count: buffer.count, offset: offset, write: write) }
        var done = 0
        let headCount = Int(a - offset)
        if headCount > 0 {
            let n = LocalIOThreads.perform(fd: buffered, buffer.baseAddress!, count: headCount, offset: offset, write: write)
            if n < headCount { return n }
            done = n
        }
        let middle = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + Int(b - a))])
        let n = await transferMiddle(direct, middle, at: a, write: write)
        if n < 0 { return write && done > 0 ? done : n }
        done += n
        if n < middle.count { return done }  // the end of the file, or a short write
        let tailCount = buffer.count - done
        if tailCount > 0 {
            let t = LocalIOThreads.perform(fd: buffered, buffer.baseAddress! + done, count: tailCount, offset: b, write: write)
            if t < 0 { return write ? done : t }
            done += t
        }
        return done
    }

    /// The aligned middle of [offset, offset + count): a = offset rounded up, b = the end
    /// rounded down (a >= b: no whole block inside).
    static func bounds(_ offset: Int64, _ count: Int) -> (Int64, Int64) {
        let mask = Int64(block - 1)
        return ((offset + mask) & ~mask, (offset + Int64(count)) & ~mask)
    }

    /// The whole-block middle, on the IO threads: straight from the caller's memory when it is
    /// aligned, else through an aligned bounce buffer of at most 1 MiB at a time.
    private static func transferMiddle(_ fd: Int32, _ middle: UnsafeMutableRawBufferPointer, at offset: Int64, write: Bool) async -> Int {
        let pool = LocalIOThreads.shared
        if Int(bitPattern: middle.baseAddress!) % block == 0 {
            return await pool.transfer(fd: fd, middle.baseAddress!, count: middle.count, offset: offset, write: write)
        }
        let chunk = min(middle.count, 1 << 20)
        let bounce = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: block)
        defer { bounce.deallocate() }
        var done = 0
        while done < middle.count {
            let count = min(chunk, middle.count - done)
            if write { bounce.baseAddress!.copyMemory(from: middle.baseAddress! + done, byteCount: count) }
            let n = await pool.transfer(fd: fd, bounce.baseAddress!, count: count, offset: offset + Int64(done), write: write)
            if n < 0 { return done > 0 ? done : n }
            if !write && n > 0 { (middle.baseAddress! + done).copyMemory(from: bounce.baseAddress!, byteCount: n) }
            done += n
            if n < count { break }
        }
        return done
    }
}
