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
        let fh = try await newHandle(file)
        if directory || file.qid.type & (Qid.typeDir | Qid.typeSymlink) != 0 { return FuseOpenOut(fh: fh) }
        return await dataPath(header, node: header.nodeID, handle: fh, file: file, flags: flags)
    }

    /// How an opened regular file's data moves (docs/LOCALIO.md, "ninep mount"): through the
    /// kernel's passthrough to a granted descriptor (no READ or WRITE reaches this daemon),
    /// through a grant this daemon's workers pread and pwrite, or through 9P. Every grant is
    /// asked for again at each open: a file revoked (or refused to this user) meanwhile gets
    /// none, and its new opens move data through 9P.
    func dataPath(_ header: FuseInHeader, node: UInt64, handle fh: UInt64, file: RemoteFile, flags: UInt32, created: Qid? = nil) async -> FuseOpenOut {
        let out = await chooseDataPath(header, node: node, handle: fh, file: file, flags: flags, created: created)
        if options.trace {
            let path = out.flags.contains(.passthrough) ? "passthrough, backing \(out.backingID)\(out.flags.contains(.directIO) ? ", reads and writes through this daemon (no grant for this open, or the backing's access is narrower)" : "")"
                : file.usesLocalIO ? "a grant read and written by this daemon" : "9P"
            log("open of node \(node) (flags 0o\(String(flags, radix: 8))): data by \(path)")
        }
        return out
    }

    private func chooseDataPath(_ header: FuseInHeader, node: UInt64, handle fh: UInt64, file: RemoteFile, flags: UInt32, created: Qid?) async -> FuseOpenOut {
        let plain = FuseOpenOut(fh: fh, flags: fileOpenFlags)
        // Another user's attach (allow_other as root): the server grants only to the
        // connection's own identity (SO_PEERCRED), so asking would only cost a round trip.
        let grantable = options.passthrough != .off && client.isProvenLocal
            && (userFids == nil || header.uid == options.identity.attachUID)
        let access = flags & UInt32(O_ACCMODE)
        let read = access != UInt32(O_WRONLY)
        let write = access != UInt32(O_RDONLY)
        switch passthrough.decide(node: node, handle: fh, read: read, write: write) {
        case let .existing(id, covers):
            // The kernel insists on FOPEN_PASSTHROUGH with the inode's one backing. The server
            // is asked anyway: without a grant (revoked, another user) the data of this open
            // goes through this daemon and 9P, and only mmap uses the backing.
            let granted = grantable ? await file.requestLocalGrant(openFlags: flags & ~OpenFlags.direct, created: created) : false
            return joined(file, handle: fh, id: id, covers: covers, granted: granted)
        case .firstOpen:
            let granted = grantable ? await file.requestLocalGrant(openFlags: flags & ~OpenFlags.direct, created: created) : false
            // Registers the grant as the node's backing, or joins the backing another open of
            // the node registered meanwhile (then this open must be passthrough too, granted or
            // not); nil: plain, and the grant, if any, stays for the workers.
            if let backing = passthrough.register(node: node, handle: fh, file: file, read: read, write: write, log: log) {
                return joined(file, handle: fh, id: backing.id, covers: backing.covers, granted: granted)
            }
            if granted { passthrough.workerGrants.add(1, ordering: .relaxed) }
            return plain
        case .plain:
            // O_DIRECT: the grant would be a direct descriptor, which needs aligned buffers;
            // the workers serve those through 9P (as NinePClient does).
            if grantable, flags & OpenFlags.direct == 0, await file.requestLocalGrant(openFlags: flags, created: created) {
                passthrough.workerGrants.add(1, ordering: .relaxed)
            }
            return plain
        }
    }

    /// A passthrough open on backing `id`. When the backing's access covers the open's and
    /// the server granted this open too, the kernel does all its IO and the daemon drops its
    /// descriptor; otherwise (a read-only backing and a read-write open, no grant) its reads
    /// and writes come to the daemon (FOPEN_DIRECT_IO), served by its own grant if it got one.
    private func joined(_ file: RemoteFile, handle fh: UInt64, id: Int32, covers: Bool, granted: Bool) -> FuseOpenOut {
        passthrough.passthroughOpens.add(1, ordering: .relaxed)
        if granted && covers {
            file.releaseLocalGrant()
            return FuseOpenOut(fh: fh, flags: [.passthrough], backingID: id)
        }
        if granted { passthrough.workerGrants.add(1, ordering: .relaxed) }
        return FuseOpenOut(fh: fh, flags: [.passthrough, .directIO], backingID: id)
    }

    /// READ: from a read-ahead lane when one has it (`ReadAhead`); else, when one Tread can
    /// carry it, that Tread's reply is kept and its data written on from the 9P message buffer
    /// (`KeptReplies`: the slot's payload, no copy); else Treads straight into the reply until
    /// the size asked for, or a short read (the end of the file: FUSE takes a short reply as
    /// end of file).
    func read(_ r: FuseReadIn, _ header: FuseInHeader, slot: FuseSlot) async throws -> Int {
        let file = try handle(r.fh)
        passthrough.reads.add(1, ordering: .relaxed)
        // Not for O_DIRECT (it must see the server as it is now), nor where localio may be in
        // use: a file with a grant (its data is a local pread away), and no file at all when
        // passthrough may be (writes through a passthrough backing never reach this daemon,
        // so they could not mark a read-ahead stale).
        if let readAhead, r.flags & OpenFlags.direct == 0, !file.usesLocalIO,
           options.passthrough == .off || !client.isProvenLocal,
           let n = try await readAhead.serve(slot, unique: header.unique, node: header.nodeID, fh: r.fh, offset: r.offset, size: min(Int(r.size), slot.reply.count - FuseOutHeader.wireSize), file: file) {
            var reply = try FuseReply(into: slot.reply, unique: header.unique)
            try reply.writer.advance(n)
            return reply.finish()
        }
        let out = slot.reply
        let unique = header.unique
        var reply = try FuseReply(into: out, unique: unique)
        let start = reply.writer.offset
        let wanted = min(Int(r.size), reply.writer.remaining)
        // Large READs only: below this the copy costs less than holding the 9P slot longer.
        if wanted >= Self.keptReadMinimum, wanted <= file.ioSize, !file.usesLocalIO {
            let kept = try await file.readKept(count: wanted, at: r.offset)
            let n = min(kept.data.count, wanted)
            keptReplies.attach(kept, count: n, to: slot)
            try reply.writer.advance(n)
            return reply.finish()
        }
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

    /// READs of at least this many bytes are answered from the 9P message buffer.
    static let keptReadMinimum = 64 * 1024

    func write(_ w: FuseWriteIn, _ data: ByteView) async throws -> FuseWriteOut {
        let file = try handle(w.fh)
        passthrough.writes.add(1, ordering: .relaxed)
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
