import CNinePShims
import Glibc
import NinePWire

/// What a handler made of a request.
enum HandlerResult: Equatable {
    /// A frame of `length` bytes at the start of the context's reply region: the R-message,
    /// or Rlerror with the errno the handler threw.
    case reply(length: Int)
    /// Waiting, without a worker, for a FIFO or socket (the readiness waiter owns it now).
    case parked
    /// The reader tried it and may not wait: it goes to the workers unchanged.
    case wouldBlock
}

/// Routes a request to its handler and turns a failure into Rlerror. Every handler validates
/// its inputs before it touches the file system and encodes its reply into the context's
/// reply buffer, returning the frame length (or, for reads and writes, a `HandlerResult`).
extension Worker {
    func handle(_ context: RequestContext<Backend>) -> HandlerResult {
        connection = context.connection
        self.context = context
        defer {
            connection = nil
            self.context = nil
        }
        let result = dispatch(context)
        if server.tracesRequests, case let .reply(length) = result { trace(context, replyLength: length) }
        return result
    }

    /// One log line per request at trace level: what came in and what went out.
    private func trace(_ context: RequestContext<Backend>, replyLength: Int) {
        let reply = UnsafeRawBufferPointer(rebasing: context.replyRegion[0..<replyLength])
        let outcome: String
        if let decoded = try? RMessage.decode(reply, msize: UInt32(reply.count)) {
            if case let .lerror(code) = decoded.response { outcome = "Rlerror(\(code))" } else { outcome = "\(decoded.response)" }
        } else {
            outcome = "(\(replyLength) bytes)"
        }
        server.logger.trace("\(context.message.request) -> \(outcome)", metadata: ["peer": "\(context.connection.peer)", "tag": "\(context.message.tag)"])
    }

    private func dispatch(_ context: RequestContext<Backend>) -> HandlerResult {
        let tag = context.message.tag
        var w = WireWriter(context.replyRegion)
        let connection = context.connection
        do throws(ServerErrno) {
            if !connection.stateLock.withLock({ connection.versionNegotiated }) {
                throw ServerErrno(LinuxErrno.EPROTO)
            }
            switch context.message.request {
            case .version:
                throw ServerErrno.invalid  // served by the reader
            case .flush:
                throw ServerErrno.invalid  // served by the reader
            case .auth:
                // No authentication scheme: attach with afid = NOFID. ENOENT is how 9P clients
                // (diod's libnpclient among them) learn that no authentication is required.
                throw ServerErrno(LinuxErrno.ENOENT)
            case let .attach(fid, afid, uname, aname, nuname):
                return .reply(length: try attach(connection, tag: tag, fid: fid, afid: afid, uname: uname, aname: aname, nuname: nuname, into: &w))
            case let .walk(fid, newfid, names):
                return .reply(length: try walk(connection, tag: tag, fid: fid, newfid: newfid, names: names, into: &w))
            case let .lopen(fid, flags):
                return .reply(length: try lopen(connection, tag: tag, fid: fid, flags: flags, into: &w))
            case let .lcreate(fid, name, flags, mode, gid):
                return .reply(length: try lcreate(connection, tag: tag, fid: fid, name: name, flags: flags, mode: mode, gid: gid, into: &w))
            case let .read(fid, offset, count):
                return try read(connection, tag: tag, fid: fid, offset: offset, count: count, into: &w)
            case let .write(fid, offset, data):
                return try write(connection, tag: tag, fid: fid, offset: offset, data: data, into: &w)
            case let .clunk(fid):
                return .reply(length: try clunk(connection, tag: tag, fid: fid, into: &w))
            case let .remove(fid):
                return .reply(length: try remove(connection, tag: tag, fid: fid, into: &w))
            case let .statfs(fid):
                return .reply(length: try statfs(connection, tag: tag, fid: fid, into: &w))
            case let .getattr(fid, mask):
                return .reply(length: try getattr(connection, tag: tag, fid: fid, mask: mask, into: &w))
            case let .setattr(fid, fields):
                return .reply(length: try setattr(connection, tag: tag, fid: fid, fields: fields, into: &w))
            case let .readdir(fid, offset, count):
                return .reply(length: try readdir(connection, tag: tag, fid: fid, offset: offset, count: count, into: &w))
            case let .fsync(fid, datasync):
                return .reply(length: try fsync(connection, tag: tag, fid: fid, datasync: datasync, into: &w))
            case let .lock(fid, fields):
                return .reply(length: try lock(connection, tag: tag, fid: fid, fields: fields, into: &w))
            case let .getlock(fid, fields):
                return .reply(length: try getlock(connection, tag: tag, fid: fid, fields: fields, into: &w))
            case let .link(dfid, fid, name):
                return .reply(length: try link(connection, tag: tag, dfid: dfid, fid: fid, name: name, into: &w))
            case let .mkdir(dfid, name, mode, gid):
                return .reply(length: try mkdir(connection, tag: tag, dfid: dfid, name: name, mode: mode, gid: gid, into: &w))
            case let .symlink(fid, name, target, gid):
                return .reply(length: try symlink(connection, tag: tag, dfid: fid, name: name, target: target, gid: gid, into: &w))
            case let .mknod(dfid, name, mode, major, minor, gid):
                return .reply(length: try mknod(connection, tag: tag, dfid: dfid, name: name, mode: mode, major: major, minor: minor, gid: gid, into: &w))
            case let .rename(fid, dfid, name):
                return .reply(length: try rename(connection, tag: tag, fid: fid, dfid: dfid, name: name, into: &w))
            case let .renameat(olddirfid, oldname, newdirfid, newname):
                return .reply(length: try renameat(connection, tag: tag, olddirfid: olddirfid, oldname: oldname, newdirfid: newdirfid, newname: newname, into: &w))
            case let .unlinkat(dirfid, name, flags):
                return .reply(length: try unlinkat(connection, tag: tag, dirfid: dirfid, name: name, flags: flags, into: &w))
            case let .readlink(fid):
                return .reply(length: try readlink(connection, tag: tag, fid: fid, into: &w))
            case let .xattrwalk(fid, newfid, name):
                return .reply(length: try xattrwalk(connection, tag: tag, fid: fid, newfid: newfid, name: name, into: &w))
            case let .xattrcreate(fid, name, size, flags):
                return .reply(length: try xattrcreate(connection, tag: tag, fid: fid, name: name, size: size, flags: flags, into: &w))
            case let .localproof(nonce):
                return .reply(length: try localproof(connection, tag: tag, nonce: nonce, into: &w))
            case let .localgrant(fid):
                return .reply(length: try localgrant(connection, tag: tag, fid: fid, into: &w))
            case .localrevoke:
                return try localrevoke(connection, tag: tag, into: &w)
            }
        } catch {
            // A safety net: `creating(inGroup:)` restores the group itself.
            do throws(CredentialSwitchFailure) { try identity.restoreCreationGroup() } catch { _ = refuse(error) }
            var e = WireWriter(context.replyRegion)
            return .reply(length: (try? e.rlerror(tag: tag, errno: error.code)) ?? 0)
        }
    }

    /// Encodes a reply, mapping a (never expected) lack of room to ENOMEM.
    func encode(_ response: Response, tag: UInt16, into w: inout WireWriter) throws(ServerErrno) -> Int {
        do {
            return try response.encode(tag: tag, into: &w)
        } catch {
            throw ServerErrno(LinuxErrno.ENOMEM)
        }
    }

    /// Borrows a fid for the duration of `body` and switches to its user's identity.
    func withFid<R>(
        _ connection: ServerConnection<Backend>, _ fid: UInt32, _ body: (inout FidRef<Backend>) throws(ServerErrno) -> R
    ) throws(ServerErrno) -> R {
        var ref = try borrow(connection, fid)
        defer { connection.fids.release(ref) }
        try become(ref.entry)
        return try body(&ref)
    }

    /// Acquires a fid and, if its descriptor was given back under descriptor pressure,
    /// reopens its inode from the saved handle (needs CAP_DAC_READ_SEARCH for a moment).
    func borrow(_ connection: ServerConnection<Backend>, _ fid: UInt32) throws(ServerErrno) -> FidRef<Backend> {
        guard var ref = connection.fids.acquire(fid) else { throw ServerErrno.badFid }
        guard ref.entry.pathFd < 0, let handle = ref.entry.handle else { return ref }
        // The error is captured inside: dropping the capabilities again is a system call too.
        let device = ref.entry.device
        let reopened: Result<Int32, FileSystemError> = identity.withFullCapabilities {
            do throws(FileSystemError) {
                return .success(try descriptor { () throws(FileSystemError) -> Int32 in try backend.reopen(evicted: handle, device: device) })
            } catch {
                return .failure(error)
            }
        }
        switch reopened {
        case let .success(fd):
            _ = connection.fids.restore(&ref, fd: fd)
            return ref
        case let .failure(error):
            connection.fids.release(ref)
            throw error
        }
    }

    /// Runs a backend call that creates a handle; when the process is out of descriptors,
    /// idle fids give theirs back and the call is tried once more.
    func descriptor(_ open: () throws(FileSystemError) -> Int32) throws(FileSystemError) -> Int32 {
        do throws(FileSystemError) {
            return try open()
        } catch where error.isDescriptorShortage {
            guard let connection, server.relieveDescriptorPressure(preferring: connection) > 0 else {
                throw FileSystemError(errno: EMFILE)
            }
            return try open()
        }
    }

    /// Takes the identity the fid's export asks for: the attaching user's (access user), or
    /// root's (access client, on a server whose other exports switch). A no-op unless root.
    func become(_ entry: FidEntry<Backend>) throws(ServerErrno) {
        // Every live fid has an export; without one, running on with the thread's last
        // identity (possibly root's) would be the wrong answer.
        guard let export = entry.export else { throw ServerErrno.badFid }
        let credentials: UserCredentials
        if export.switchesIdentity, let squash = export.configuration.squash {
            // Not from `server.users`: another export may know the same uid with its groups.
            credentials = UserCredentials(uid: squash.uid, gid: squash.gid, groups: [])
        } else if export.switchesIdentity {
            guard let known = server.users.credentials(uid: entry.uid) else { throw ServerErrno(LinuxErrno.EACCES) }
            credentials = known
        } else if export.ownsForClients {
            credentials = UserCredentials.root
        } else {
            return
        }
        do throws(CredentialSwitchFailure) { try identity.become(credentials) } catch { throw refuse(error) }
    }

    /// A credential switch that did not take effect: the request fails EPERM rather than run
    /// with another identity. The first such failure is logged (the next would say the same).
    func refuse(_ failure: CredentialSwitchFailure) -> ServerErrno {
        if server.users.firstSwitchFailure() {
            server.logger.error("a worker could not switch credentials (\(failure.step) failed, errno \(failure.errno)): requests that need the switch fail with EPERM")
        }
        return ServerErrno(LinuxErrno.EPERM)
    }

    /// Runs `create`, one backend call that makes a file, with `gid` (the creation group the
    /// caller resolved with `creationGroup`) as fsgid, then restores the user's. If the group
    /// cannot be restored, `undo` gets what the call made and the request fails.
    func creating<R>(
        inGroup gid: UInt32, _ create: () throws(FileSystemError) -> R, undo: (R) -> Void = { _ in }
    ) throws(ServerErrno) -> R {
        do throws(CredentialSwitchFailure) { try identity.setCreationGroup(gid) } catch { throw refuse(error) }
        let result: Result<R, FileSystemError>
        do throws(FileSystemError) { result = .success(try create()) } catch { result = .failure(error) }
        do throws(CredentialSwitchFailure) {
            try identity.restoreCreationGroup()
        } catch {
            if case let .success(made) = result { undo(made) }
            throw refuse(error)
        }
        return try result.get()
    }

    /// Fails when the fid's export is read-only.
    func requireWritable(_ entry: FidEntry<Backend>) throws(ServerErrno) {
        if entry.export?.readOnly ?? true { throw ServerErrno.readOnly }
    }

    /// Attributes of a handle's inode (never following a symlink).
    func stat(_ handle: Int32) throws(ServerErrno) -> statx { try backend.stat(handle) }

    /// Attributes of `name` in `directory`, not following a final symlink.
    func stat(_ directory: Int32, _ name: UnsafePointer<CChar>) throws(ServerErrno) -> statx { try backend.stat(directory, name) }

    func component(_ view: ByteView, slot: Int) throws(ServerErrno) -> UnsafePointer<CChar> {
        try componentName(view, slot: slot).get()
    }
}
