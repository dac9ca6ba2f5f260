import CNinePShims
import Glibc
import NinePMemory
import NinePWire

extension Worker {
    /// Tread: pread (or read, for FIFOs and other streams) straight into the reply buffer.
    func read(
        _ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, offset: UInt64, count: UInt32, into w: inout WireWriter
    ) throws(ServerErrno) -> HandlerResult {
        try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> HandlerResult in
            let msize = Int(connection.stateLock.withLock { connection.msize })
            let wanted = min(Int(count), msize - NineP.readReplyOverhead)
            let region: UnsafeMutableRawBufferPointer
            do { region = try w.beginRread(tag: tag, maxCount: max(wanted, 0)) } catch { throw ServerErrno(LinuxErrno.ENOMEM) }
            if onlyWithoutWaiting {
                // The reader: only what the page cache holds now, of an open, buffered regular
                // file; anything else (errors included) is left to a worker.
                let e = ref.entry
                guard e.kind == .file && e.isOpen && !e.streaming && e.bufferedFd < 0 else { return .wouldBlock }
                let n = backend.readCached(e.openFd, into: region, at: offset)
                // Short means "only part of it was cached" as often as "end of file", and
                // clients take a short read of a regular file for its end (the kernel's netfs
                // zero-fills the rest of the page): a worker reads it whole instead.
                if n < region.count { return .wouldBlock }
                return .reply(length: w.finishRread(reserved: region.count, produced: n))
            }
            switch ref.entry.kind {
            case .xattrRead:
                guard let xattr = ref.entry.xattr else { throw ServerErrno.badFid }
                let n = xattr.copy(from: Int(clamping: offset), count: region.count, to: region.baseAddress)
                return .reply(length: w.finishRread(reserved: region.count, produced: n))
            case .xattrWrite:
                throw ServerErrno.badFid
            case .file:
                guard ref.entry.isOpen else { throw ServerErrno.badFid }
                let (fd, length) = Self.directSplit(ref.entry, offset: offset, count: region.count)
                let into = UnsafeMutableRawBufferPointer(start: region.baseAddress, count: length)
                let n: Int
                do throws(FileSystemError) {
                    n = ref.entry.streaming ? try backend.readStream(fd, into: into) : try backend.read(fd, into: into, at: offset)
                } catch {
                    if ref.entry.streaming && (error.errno == EAGAIN || error.errno == EWOULDBLOCK), let context,
                       connection.park(context, fd: fd, events: UInt32(NINEP_EPOLLIN)) {
                        return .parked
                    }
                    throw error
                }
                return .reply(length: w.finishRread(reserved: region.count, produced: n))
            }
        }
    }

    /// Twrite: pwrite (or write) straight from the receive buffer; regular files are written
    /// whole unless an error stops it part way.
    func write(
        _ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, offset: UInt64, data: ByteView, into w: inout WireWriter
    ) throws(ServerErrno) -> HandlerResult {
        try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> HandlerResult in
            switch ref.entry.kind {
            case .xattrWrite:
                guard let xattr = ref.entry.xattr else { throw ServerErrno.badFid }
                try requireAllocatable()
                do throws(XattrState.AppendFailure) {
                    try xattr.append(data.base, at: offset)
                } catch {
                    throw error == .sealed ? ServerErrno.badFid : ServerErrno(LinuxErrno.EINVAL)
                }
                return .reply(length: try encode(.write(count: UInt32(data.count)), tag: tag, into: &w))
            case .xattrRead:
                throw ServerErrno.badFid
            case .file:
                guard ref.entry.isOpen else { throw ServerErrno.badFid }
                let (fd, length) = Self.directSplit(ref.entry, offset: offset, count: data.count)
                if ref.entry.export!.ownsForClients { identity.clearSetIDOnWrite(forUid: ref.entry.uid) }
                let done: Int
                let from = UnsafeRawBufferPointer(start: data.base.baseAddress, count: length)
                if ref.entry.streaming {
                    do throws(FileSystemError) {
                        done = try backend.writeStream(fd, from: from)
                    } catch {
                        if error.errno == EAGAIN || error.errno == EWOULDBLOCK, let context {
                            // Nothing is written yet. A parked request keeps only its small
                            // reply buffer: what fits of the payload moves there (after the
                            // reply's own bytes, 4096-aligned), the receive buffer goes back,
                            // and the write answers a short count; the client sends the rest.
                            let kept = min(data.count, MemoryPlan.smallMessageCapacity)
                            let destination = context.replyBuffer.baseAddress! + RequestContext<Backend>.alignmentSlack
                            destination.copyMemory(from: data.base.baseAddress!, byteCount: kept)
                            context.message = TMessage(
                                tag: tag,
                                request: .write(fid: fid, offset: offset, data: ByteView(UnsafeRawBufferPointer(start: destination, count: kept))))
                            if connection.park(context, fd: fd, events: UInt32(NINEP_EPOLLOUT)) {
                                return .parked
                            }
                        }
                        throw error
                    }
                } else {
                    done = try backend.write(fd, from: from, at: offset)
                }
                // Write-behind (only in a memory-limited cgroup, see ServerConfiguration):
                // large writes start their writeback at once, so dirty pages do not pile up.
                // Under a cgroup v1 memory limit, reclaim cannot write dirty pages itself but
                // waits for pages under writeback: a cgroup full of dirty page cache ends in an
                // OOM kill, one under writeback only slows the writer.
                if writeBehind && done >= Self.writeBehindThreshold && !ref.entry.streaming {
                    backend.startWriteback(fd, offset: offset, length: done)
                }
                return .reply(length: try encode(.write(count: UInt32(done)), tag: tag, into: &w))
            }
        }
    }

    /// Writes at least this large start their own writeback (see `write`).
    static var writeBehindThreshold: Int { 64 * 1024 }

    /// Which descriptor and how many bytes serve a read or write. NINEP_O_DIRECT needs offsets and
    /// lengths aligned to the block size, but clients ask for msize-sized pieces: an aligned
    /// request goes direct, trimmed to whole blocks (a short count is legal; the client
    /// continues from there), and a misaligned one goes through the buffered descriptor.
    /// Payload buffers are 4096-aligned already (see RequestContext).
    static func directSplit(_ entry: FidEntry<Backend>, offset: UInt64, count: Int) -> (fd: Int32, count: Int) {
        guard entry.bufferedFd >= 0 else { return (entry.openFd, count) }
        let block = 4096
        if offset % UInt64(block) == 0 && count >= block { return (entry.openFd, count & ~(block - 1)) }
        return (entry.bufferedFd, count)
    }

    /// Tfsync.
    func fsync(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, datasync: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file, ref.entry.isOpen else { throw ServerErrno.badFid }
            try backend.sync(ref.entry.openFd, dataOnly: datasync != 0)
            return try encode(.fsync, tag: tag, into: &w)
        }
    }

    /// Tclunk: forgets the fid (its descriptors close when no request uses them). An xattr
    /// fid made by Txattrcreate sets (or, with no data, removes) the attribute here, and its
    /// error is the clunk's.
    func clunk(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        guard let ref = connection.fids.acquire(fid) else { throw ServerErrno.badFid }
        var failure: ServerErrno? = nil
        if ref.entry.kind == .xattrWrite, let xattr = ref.entry.xattr {
            do {
                try become(ref.entry)
                try commitXattr(ref.entry, xattr)
            } catch {
                failure = error
            }
        }
        connection.fids.release(ref)
        _ = connection.fids.clunk(fid)
        connection.localIO.forget(fid: fid)  // a clunked fid's grant needs no revocation
        if let failure { throw failure }
        return try encode(.clunk, tag: tag, into: &w)
    }
}
