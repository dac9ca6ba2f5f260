import CNinePShims
import Glibc
import NinePMemory
import NinePWire

extension Worker {
    /// Tattach: the root of the export aname selects (empty: the default export; else an
    /// export's name or path), as the user named by n_uname (or uname), subject to that
    /// export's allowed users and squash. An unknown aname is ENOENT.
    func attach(
        _ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, afid: UInt32, uname: ByteView, aname: ByteView, nuname: UInt32,
        into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        if afid != NineP.noFid { throw ServerErrno(LinuxErrno.EINVAL) }
        // Attach looks the user up and builds its group list, which allocates: ask first, so
        // a refusal is Rlerror ENOMEM rather than a trap.
        try requireAllocatable()
        let name = aname.makeString()
        guard let export = server.export(forAname: name) else {
            connection.logger.notice("refused attach to unknown export \(aname.debugDescription): no export has that name or path", metadata: ["peer": "\(connection.peer)"])
            throw ServerErrno(LinuxErrno.ENOENT)
        }
        let policy = export.configuration
        var credentials: UserCredentials
        if let squash = policy.squash {
            credentials = UserCredentials(uid: squash.uid, gid: squash.gid, groups: [])
        } else if nuname != NineP.noUid {
            credentials = UserCredentials.lookup(uid: nuname)
        } else if let named = UserCredentials.lookup(name: uname.makeString()) {
            credentials = named
        } else {
            throw ServerErrno(LinuxErrno.EACCES)
        }
        if let allowed = policy.allowedUsers, !allowed.contains(credentials.uid) {
            connection.logger.notice("refused attach of uid \(credentials.uid) to export \(policy.label): not among its allowed users", metadata: ["peer": "\(connection.peer)"])
            throw ServerErrno(LinuxErrno.EACCES)
        }
        if export.ownsForClients {
            // The uid only names the owner of what this session creates; requests run as root.
            credentials = UserCredentials(uid: credentials.uid, gid: credentials.gid, groups: [])
        } else if !export.switchesIdentity {
            // Not root: every access is the daemon's own user, whoever attaches.
            credentials = UserCredentials(uid: getuid(), gid: getgid(), groups: [])
        } else if policy.squash == nil {
            // The groups `become` switches to, read without allocating on the request path.
            // Squashed sessions take theirs from the export (see `Worker.become`).
            server.users.register(credentials)
        }
        let root = try descriptor { () throws(FileSystemError) -> Int32 in try export.backend.openRoot() }
        let st: statx
        do {
            st = try stat(root)
        } catch {
            backend.close(root)
            throw error
        }
        var entry = FidEntry<Backend>()
        entry.pathFd = root
        entry.qid = server.qids.qid(st)
        entry.device = st.deviceID
        entry.uid = credentials.uid
        entry.isRoot = true
        entry.export = export
        let ref: FidRef<Backend>
        do {
            ref = try connection.fids.insert(fid, entry)
        } catch {
            backend.close(root)
            throw Self.fidError(for: error)
        }
        connection.fids.release(ref)
        return try encode(.attach(qid: entry.qid), tag: tag, into: &w)
    }

    static func fidError(for failure: FidTableFailure) -> ServerErrno {
        switch failure {
        case .unknownFid, .fidInUse: ServerErrno.badFid
        case .tableFull: ServerErrno(LinuxErrno.EMFILE)
        case .outOfMemory: ServerErrno(LinuxErrno.ENOMEM)
        }
    }
}
