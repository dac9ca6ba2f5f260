import Glibc
import NinePClient

/// Moves a file's bytes between a local descriptor and a remote file with several Treads or
/// Twrites in flight at once (one message each), so that the round trip does not set the pace.
/// Each chunk lands at its own offset (pread/pwrite), so chunks may complete in any order.
struct Transfer {
    let file: RemoteFile
    let local: Int32
    let localPath: String
    let window: Int

    /// Remote to local: reads the `size` bytes that stat announced, then goes on until a short
    /// read (in case the file grew); returns the length of the copy.
    func download(size: UInt64, progress: inout Progress) async throws -> UInt64 {
        let chunkSize = file.ioSize
        let chunks = makeChunks(chunkSize)
        defer { for chunk in chunks { chunk.bytes.deallocate() } }
        var next: UInt64 = 0
        var end: UInt64 = 0
        var lastWasFull = true
        try await withThrowingTaskGroup(of: (Int, UInt64, Int).self) { group in
            func schedule(_ index: Int) {
                let offset = next
                next += UInt64(chunkSize)
                let chunk = chunks[index]
                group.addTask { (index, offset, try await file.read(into: chunk.bytes, at: offset)) }
            }
            for index in 0..<window where next < size { schedule(index) }
            while let (index, offset, count) = try await group.next() {
                try store(chunks[index], count: count, at: offset)
                progress.advance(by: count)
                end = max(end, offset + UInt64(count))
                if offset + UInt64(chunkSize) >= size { lastWasFull = count == chunkSize }
                if next < size { schedule(index) }
            }
        }
        // The file may have grown since stat: read on, one message at a time, to a short read.
        while lastWasFull {
            let count = try await file.read(into: chunks[0].bytes, at: next)
            try store(chunks[0], count: count, at: next)
            progress.advance(by: count)
            next += UInt64(count)
            end = max(end, next)
            lastWasFull = count == chunkSize
        }
        guard ftruncate(local, off_t(end)) == 0 else { throw LocalError(path: localPath, errno: errno) }
        return end
    }

    /// One page-aligned buffer per message in flight; the caller deallocates them.
    private func makeChunks(_ chunkSize: Int) -> [OwnedBuffer] {
        (0..<window).map { _ in OwnedBuffer(bytes: .allocate(byteCount: chunkSize, alignment: 4096)) }
    }

    private func store(_ chunk: OwnedBuffer, count: Int, at offset: UInt64) throws {
        guard count > 0 else { return }
        let written = pwrite(local, chunk.bytes.baseAddress, count, off_t(offset))
        guard written == count else { throw LocalError(path: localPath, errno: written < 0 ? errno : ENOSPC) }
    }

    /// Local to remote: writes `size` bytes read from the local file; returns the bytes sent.
    func upload(size: UInt64, progress: inout Progress) async throws -> UInt64 {
        let chunkSize = file.ioSize
        let chunks = makeChunks(chunkSize)
        defer { for chunk in chunks { chunk.bytes.deallocate() } }
        var next: UInt64 = 0
        var sent: UInt64 = 0
        try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            func schedule(_ index: Int) throws {
                let offset = next
                let count = Int(min(UInt64(chunkSize), size - offset))
                next += UInt64(count)
                let chunk = chunks[index]
                var filled = 0
                while filled < count {
                    let n = pread(local, chunk.bytes.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled))
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw LocalError(path: localPath, errno: n < 0 ? errno : EIO) }
                    filled += n
                }
                group.addTask {
                    var done = 0
                    while done < count {
                        let n = try await file.write(UnsafeRawBufferPointer(rebasing: chunk.bytes[done..<count]), at: offset + UInt64(done))
                        guard n > 0 else { throw NinePError(.server, errno: EIO, operation: .write, path: file.path) }
                        done += n
                    }
                    return (index, count)
                }
            }
            for index in 0..<window where next < size { try schedule(index) }
            while let (index, count) = try await group.next() {
                sent += UInt64(count)
                progress.advance(by: count)
                if next < size { try schedule(index) }
            }
        }
        return sent
    }
}
