import CNinePShims
import Glibc

/// Reads, writes, directory reads and syncs of the host's files.
extension PosixBackend {
    public func read(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(FileSystemError) -> Int {
        let n = PositionalIO.read(handle, into: buffer.baseAddress, length: buffer.count, at: offset)
        if n < 0 { throw .current }
        return n
    }

    /// preadv2 RWF_NOWAIT: the page cache only.
    public func readCached(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Int {
        ninep_pread_nowait(handle, buffer.baseAddress, buffer.count, Int64(bitPattern: offset))
    }

    public func write(_ handle: Int32, from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(FileSystemError) -> Int {
        let n = PositionalIO.write(handle, from: buffer.baseAddress, length: buffer.count, at: offset)
        if n < 0 { throw .current }
        return n
    }

    public func readStream(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        let n = Glibc.read(handle, buffer.baseAddress, buffer.count)
        if n < 0 { throw .current }
        return n
    }

    public func writeStream(_ handle: Int32, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int {
        guard buffer.count > 0 else { return 0 }
        let n = Glibc.write(handle, buffer.baseAddress!, buffer.count)
        if n < 0 { throw .current }
        return n
    }

    public func startWriteback(_ handle: Int32, offset: UInt64, length: Int) {
        _ = ninep_start_writeback(handle, Int64(bitPattern: offset), Int64(length))
    }

    public func sync(_ handle: Int32, dataOnly: Bool) throws(FileSystemError) {
        try Self.check(dataOnly ? fdatasync(handle) : Glibc.fsync(handle))
    }

    public func seekDirectory(_ handle: Int32, to offset: UInt64) throws(FileSystemError) {
        if lseek(handle, off_t(Int64(bitPattern: offset)), SEEK_SET) < 0 { throw .current }
    }

    public func readDirectory(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        let n = ninep_getdents64(handle, buffer.baseAddress, buffer.count)
        if n < 0 { throw .current }
        return Int(n)
    }
}
