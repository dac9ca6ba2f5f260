import CNinePShims
import Glibc
import NinePWire

/// The localio handlers (docs/LOCALIO.md). Every check that needs no file system comes first
/// (gVisor style); a refusal is Rlerror with the errno the document lists, and is counted.
extension Worker {
    /// Tlocalproof: the nonce of the memfd that came with Rversion.
    func localproof(_ connection: ServerConnection<Backend>, tag: UInt16, nonce: LocalNonce, into w: inout WireWriter) throws(ServerErrno) -> Int {
        do throws(ServerErrno) {
            try connection.localIO.prove(nonce.bytes)
        } catch {
            connection.statistics?.recordLocalIO(.proofRefused)
            connection.logger.notice("refused localio proof: \(error.code == LinuxErrno.EACCES ? "wrong nonce" : "localio not negotiated")", metadata: ["peer": "\(connection.peer)"])
            throw error
        }
        connection.statistics?.recordLocalIO(.proofAccepted)
        return try encode(.localproof, tag: tag, into: &w)
    }

    /// Tlocalgrant: a descriptor for the open fid's file, attached to Rlocalgrant.
    func localgrant(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        do throws(ServerErrno) {
            let length = try grant(connection, tag: tag, fid: fid, into: &w)
            connection.statistics?.recordLocalIO(.granted)
            return length
        } catch {
            connection.statistics?.recordLocalIO(.refused(errno: error.code))
            throw error
        }
    }

    private func grant(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try connection.localIO.requireProven()
        // A backend whose handles are not this process's descriptors has nothing to pass.
        guard backend.handlesAreHostDescriptors, let context else { throw ServerErrno.notSupported }
        return try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            let entry = ref.entry
            // Only to the identity the fid acts as (the attaching user, or the uid the export
            // squashes to; the daemon's own uid when it is not root).
            guard connection.localIO.peerIs(uid: entry.uid) else { throw ServerErrno(LinuxErrno.EPERM) }
            guard entry.kind == .file, entry.isOpen, entry.pathFd >= 0 else { throw ServerErrno.badFid }
            guard !entry.streaming, !entry.qid.isDirectory, !entry.qid.isSymlink else { throw ServerErrno.invalid }
            let access = entry.openFlags & O_ACCMODE
            let readOnlyExport = entry.export?.readOnly ?? true
            if readOnlyExport && access != O_RDONLY { throw ServerErrno.readOnly }
            // The file system from here on.
            let st = try stat(entry.openFd)
            guard UInt32(st.stx_mode) & FileMode.typeMask == FileMode.regular else { throw ServerErrno.invalid }
            // A read-only descriptor still lets its owner fchmod, fchown and fsetxattr: on a
            // read-only export only a file system the kernel itself keeps read-only is safe.
            if readOnlyExport && ninep_fd_on_read_only_mount(entry.openFd) != 1 { throw ServerErrno.readOnly }
            // A new open file description with exactly the fid's access mode and status flags
            // (never O_TRUNC or O_CREAT again), opened as the fid's user (withFid switched to
            // it): offsets and flags are not shared with the server's own descriptor.
            let kept = O_ACCMODE | O_APPEND | O_DSYNC | O_SYNC | NINEP_O_DIRECT
            let flags = (entry.openFlags & kept) | O_CLOEXEC | O_NOCTTY
            let granted = try descriptor { () throws(FileSystemError) -> Int32 in try backend.open(entry.pathFd, flags: flags) }
            // The same inode as the fid's: /proc/self/fd of an O_PATH descriptor cannot lead
            // elsewhere, but a grant is worth one more statx to be sure.
            let check: statx
            do throws(ServerErrno) { check = try stat(granted) } catch {
                backend.close(granted)
                throw error
            }
            guard check.stx_ino == st.stx_ino, check.stx_dev_major == st.stx_dev_major, check.stx_dev_minor == st.stx_dev_minor else {
                backend.close(granted)
                throw ServerErrno(LinuxErrno.ESTALE)
            }
            let length: Int
            do throws(ServerErrno) {
                length = try encode(.localgrant(flags: Self.wireFlags(flags)), tag: tag, into: &w)
            } catch {
                backend.close(granted)
                throw error
            }
            // Sent with the reply's first byte, closed here once written (ServerConnection+Output).
            context.attachedDescriptor = granted
            connection.localIO.noteGranted(fid: fid)
            return length
        }
    }

    /// 9P2000.L flags of a granted descriptor (the subset it keeps of the fid's).
    static func wireFlags(_ host: Int32) -> UInt32 {
        var flags: UInt32
        switch host & O_ACCMODE {
        case O_WRONLY: flags = OpenFlags.writeOnly
        case O_RDWR: flags = OpenFlags.readWrite
        default: flags = OpenFlags.readOnly
        }
        if host & O_APPEND != 0 { flags |= OpenFlags.append }
        if host & NINEP_O_DIRECT != 0 { flags |= OpenFlags.direct }
        if host & O_SYNC == O_SYNC { flags |= OpenFlags.sync } else if host & O_DSYNC != 0 { flags |= OpenFlags.dsync }
        return flags
    }
}

extension Worker {
    /// Tlocalrevoke: answered at once when revoked fids wait, else parked until a revocation,
    /// a Tflush of it, or the session's end (docs/LOCALIO.md). Parked, it holds no worker and
    /// only a small reply buffer (in the parking reserve when there is room), like a FIFO read.
    func localrevoke(_ connection: ServerConnection<Backend>, tag: UInt16, into w: inout WireWriter) throws(ServerErrno) -> HandlerResult {
        try connection.localIO.requireProven()
        // A backend without host descriptors grants nothing, so there is nothing to revoke.
        guard backend.handlesAreHostDescriptors, let context else { throw ServerErrno.notSupported }
        if connection.localIO.hasRevoked {
            return .reply(length: ServerConnection<Backend>.encodeRevoked(connection.localIO, tag: tag, into: context.replyRegion))
        }
        let parked: Bool = connection.stateLock.withLock {
            // A Tflush that came while it ran: a poll that has changed nothing just ends.
            if !context.pendingFlushes.isEmpty { context.aborted = true }
            if context.aborted || connection.closing { return false }
            // One poll per session: a second one is a client bug, answered at once.
            if connection.revocationPoll.context != nil { return false }
            context.phase = .parked
            context.worker = nil
            connection.revocationPoll.context = context
            connection.keepOnlySmallReplyLocked(context)
            return true
        }
        guard parked else {
            if context.aborted { return .reply(length: 0) }
            throw ServerErrno(LinuxErrno.EBUSY)
        }
        server.dispatchDeferredGrants()  // buffers it gave back may start others
        // A revocation that came between the check above and the parking found no poll.
        connection.answerRevocationPoll()
        return .parked
    }
}
