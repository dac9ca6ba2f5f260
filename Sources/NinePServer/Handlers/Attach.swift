import CNinePShims
import Glibc
import NinePMemory
import NinePWire

extension Worker {
    /// Tattach: the export root, as the user named by n_uname (or uname), subject to the
    /// allowed-users and squash options. aname may be empty or the export path.
    func attach(
        _ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, afid: UInt32, uname: ByteView, aname: ByteView, nuname: UInt32,
        into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        let configuration = server.configuration
        if afid != NineP.noFid { throw ServerErrno(LinuxErrno.EINVAL) }
        // Attach looks the user up and builds its group list, which allocates: ask first, so
        // a refusal is Rlerror ENOMEM rather than a trap.
        try requireAllocatable()
        if aname.count > 0 {
            let name = aname.makeString()
            let trimmed = name.count > 1 && name.hasSuffix("/") ? String(name.dropLast()) : name
            guard backend.isExportName(trimmed) else {
                throw ServerErrno(LinuxErrno.ENOENT)
            }
        }
        var credentials: UserCredentials
        if let squash = configuration.squashUser {
            credentials = UserCredentials(uid: squash.uid, gid: squash.gid, groups: [])
        } else if nuname != NineP.noUid {
            credentials = UserCredentials.lookup(uid: nuname)
        } else if let named = UserCredentials.lookup(name: uname.makeString()) {
            credentials = named
        } else {
            throw ServerErrno(LinuxErrno.EACCES)
        }
        if let allowed = configuration.allowedUsers, !allowed.contains(credentials.uid) {
            connection.logger.notice("refused attach of uid \(credentials.uid): not in --allow-user", metadata: ["peer": "\(connection.peer)"])
            throw ServerErrno(LinuxErrno.EACCES)
        }
        if server.ownsForClients {
            // The uid only names the owner of what this session creates.
            credentials = UserCredentials(uid: credentials.uid, gid: credentials.gid, groups: [])
        } else if !server.switchesIdentity {
            // Not root: every access is the daemon's own user, whoever attaches.
            credentials = UserCredentials(uid: getuid(), gid: getgid(), groups: [])
        }
        server.users.register(credentials)
        let root = try descriptor { () throws(FileSystemError) -> Int32 in try backend.openRoot() }
        let st: statx
        do {
            st = try stat(root)
        } catch {
            backend.close(root)
            throw error
        }
        var entry = FidEntry()
        entry.pathFd = root
        entry.qid = server.qids.qid(st)
        entry.device = st.deviceID
        entry.uid = credentials.uid
        entry.isRoot = true
        let ref: FidRef
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
