import Glibc
import NinePClient
import NinePWire

/// OPEN, OPENDIR, READ, WRITE, READDIR, RELEASE: each open is a fid of its own, opened with
/// Tlopen; data moves between the slot's buffers and the client's message buffers.
extension NinePFileSystem {
    /// open(2) flags the server must not see: creation is CREATE's business, truncation came as
    /// a SETATTR already (no atomic O_TRUNC negotiated), and descriptor flags are local.
    static let localOpenFlags = UInt32(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC)

    /// The open(2) flags of a file as the server sees them. With the write-back cache the kernel
    /// reads pages around partial writes even of a write-only file, and places appends itself:
    /// the server opens it for reading too, and without O_APPEND.
    func serverOpenFlags(_ flags: UInt32) -> UInt32 {
        var wanted = flags & ~Self.localOpenFlags
        if options.cache == .writeback {
            if wanted & UInt32(O_ACCMODE) == UInt32(O_WRONLY) { wanted = (wanted & ~UInt32(O_ACCMODE)) | UInt32(O_RDWR) }
            wanted &= ~UInt32(O_APPEND)
        }
        return wanted
    }

    /// FOPEN flags for an open file: no page cache with `cache=none`.
    var fileOpenFlags: FuseOpenOut.Flags { options.cache == .none ? [.directIO] : [] }

    func open(_ header: FuseInHeader, flags: UInt32, directory: Bool) async throws -> FuseOpenOut {
        let file = try await node(header.nodeID, for: header).clone()
        do {
            let wanted = directory ? UInt32(O_RDONLY | O_DIRECTORY) : serverOpenFlags(flags)
            try await file.open(flags: wanted)
        } catch {
            await file.close()
            throw error
        }
        return FuseOpenOut(fh: try await newHandle(file), flags: directory ? [] : fileOpenFlags)
    }

    func release(_ fh: UInt64) async {
        await handles.remove(fh)?.close()
    }

    /// READ: Treads straight into the reply until the size asked for, or a short read (the end
    /// of the file: FUSE takes a short reply as end of file).
    func read(_ r: FuseReadIn, unique: UInt64, into out: UnsafeMutableRawBufferPointer) async throws -> Int {
        let file = try handle(r.fh)
        var reply = try FuseReply(into: out, unique: unique)
        let start = reply.writer.offset
        let wanted = min(Int(r.size), reply.writer.remaining)
        var done = 0
        while done < wanted {
            let chunk = min(wanted - done, file.ioSize)
            let destination = UnsafeMutableRawBufferPointer(rebasing: out[(start + done)..<(start + done + chunk)])
            let n: Int
            do {
                n = try await file.read(into: destination, at: r.offset + UInt64(done))
            } catch {
                // Data already read is still a good (short) answer.
                if done > 0 { break }
                throw error
            }
            done += n
            if n < chunk { break }
        }
        try reply.writer.advance(done)
        return reply.finish()
    }

    func write(_ w: FuseWriteIn, _ data: ByteView) async throws -> FuseWriteOut {
        let file = try handle(w.fh)
        var done = 0
        while done < data.count {
            let n = try await file.write(UnsafeRawBufferPointer(rebasing: data.base[done...]), at: w.offset + UInt64(done))
            guard n > 0 else { throw FuseFailure(EIO) }
            done += n
        }
        return FuseWriteOut(size: UInt32(done))
    }

    /// READDIR: one Treaddir of about the size asked for, packed as fuse_dirents. 9P offsets are
    /// the server's cookies; each dirent carries the cookie of the entry after it, which is what
    /// the kernel sends back as the next READDIR's offset. Entries that do not fit are left for
    /// that next READDIR.
    func readdir(_ r: FuseReadIn, unique: UInt64, into out: UnsafeMutableRawBufferPointer) async throws -> Int {
        let directory = try handle(r.fh)
        var reply = try FuseReply(into: out, unique: unique)
        var packer = FuseDirentPacker(continuing: reply.writer, size: Int(r.size))
        _ = try await directory.readDirectory(at: r.offset, count: Int(r.size)) { entry in
            packer.append(ino: entry.qid.path, offset: entry.offset, type: direntType(entry), name: entry.name)
        }
        reply.writer = packer.writer
        return reply.finish()
    }
}
