import Glibc
import NinePWire

/// A fid walked by `RemoteFile.walkFid`, not yet adopted as a file.
public struct WalkedFid: Sendable {
    let fid: UInt32
    public let qid: Qid
}

/// Operations relative to a fid rather than to a path from the root: what a front end that keeps
/// one fid per known file (the FUSE mount's nodes) needs. Names are taken as `ByteView`s so a
/// name decoded from another protocol goes onto the wire without becoming a String.
extension RemoteFile {
    /// A new fid for `name` in this directory, not opened (Twalk of one name).
    public func walk(_ name: ByteView) async throws -> RemoteFile {
        do {
            return adopt(try await walkFid(name), name: name)
        } catch let error as NinePError {
            throw error.at(childPath(name))
        }
    }

    /// The path of `name` in this directory (for messages).
    func childPath(_ name: ByteView) -> String {
        path.hasSuffix("/") ? path + name.makeString() : path + "/" + name.makeString()
    }

    /// A new fid for `name` in this directory (Twalk of one name), not yet a `RemoteFile`: no
    /// object and no path string, so a front end that already knows the file (the FUSE mount's
    /// lookup of a node it holds) can stat it and let it go without allocating. Make it a file
    /// with `adopt`, or give it back with `discard`; one of the two exactly once.
    public func walkFid(_ name: ByteView) async throws -> WalkedFid {
        try checkUsable(.walk)
        // One connection for the fid number and the call: a reconnect in between must not
        // hand this number (from the old connection's allocator) to the new one.
        let connection = self.connection
        let newfid = connection.allocateFid()
        do {
            let qid = try await walkOne(name, to: newfid, on: connection, following: nil)
            guard let qid else {
                // A walk that stops short makes no fid (walk(5)).
                connection.releaseFid(newfid)
                throw NinePError(.server, errno: ENOENT, operation: .walk, path: path)
            }
            return WalkedFid(fid: newfid, qid: qid)
        } catch let error as NinePError {
            if error.kind == .server { connection.releaseFid(newfid) } else if error.kind == .protocolViolation { connection.clunkLater(newfid) }
            throw error.at(path)
        }
    }

    /// `walkFid` with Tgetattr of the new fid sent right behind the Twalk (one round trip for
    /// both, see `createAndStat`): the walked fid and its attributes. A server may run the
    /// Tgetattr first, on a fid that does not exist yet (an error), so its answer counts only
    /// when its qid is the walk's; otherwise this asks again. A name that is not there costs
    /// the server one more small request (the Tgetattr's error), not a round trip.
    public func walkFidAndStat(_ name: ByteView, _ mask: UInt64 = GetattrMask.basic | GetattrMask.btime) async throws -> (WalkedFid, FileAttributes) {
        try checkUsable(.walk)
        let connection = self.connection
        let newfid = connection.allocateFid()
        let following = connection.prepareFollowing { (w: inout WireWriter, tag) throws(WireError) in
            try Request.getattr(fid: newfid, mask: mask).encode(tag: tag, into: &w)
        }
        let walked: WalkedFid
        do {
            let qid = try await walkOne(name, to: newfid, on: connection, following: following)
            guard let qid else {
                if let following { connection.abandon(following) }
                connection.releaseFid(newfid)
                throw NinePError(.server, errno: ENOENT, operation: .walk, path: path)
            }
            walked = WalkedFid(fid: newfid, qid: qid)
        } catch let error as NinePError {
            if let following { connection.abandon(following, flush: error.kind != .server) }
            if error.kind == .server { connection.releaseFid(newfid) } else if error.kind == .protocolViolation { connection.clunkLater(newfid) }
            throw error.at(path)
        } catch {
            if let following { connection.abandon(following, flush: true) }
            throw error
        }
        if let following {
            do {
                // Nil: run before the walk made the fid; asked again below.
                if let attributes = try await collectAttributes(following, of: walked.qid, on: connection) { return (walked, attributes) }
            } catch {
                await discard(walked)
                throw (error as? NinePError)?.at(path) ?? error
            }
        }
        do {
            return (walked, try await stat(walked, mask))
        } catch {
            await discard(walked)
            throw error
        }
    }

    /// Twalk of `name` from this fid to `newfid` on `connection` (the one `newfid` was taken
    /// from), with `following` behind it: the qid reached, nil when the walk stopped short.
    private func walkOne(_ name: ByteView, to newfid: UInt32, on connection: ClientConnection, following: FollowingRequest?) async throws -> Qid? {
        let fid = self.fid
        return try await connection.call(.walk, undo: .walk(newfid: newfid, names: 1), timeout: client.callTimeout, keepingReply: false, following: following) { (w: inout WireWriter, tag) throws(WireError) in
            try w.beginFrame(.twalk, tag: tag)
            try w.u32(fid); try w.u32(newfid); try w.u16(1); try w.string(name)
            w.finishFrame()
        } decode: { response throws(NinePError) in
            guard case let .walk(qids) = response else { throw .protocolViolation(.walk) }
            // Not `qids.last`: the generic accessor allocates in a debug build.
            return qids.endIndex > 0 ? qids[qids.endIndex - 1] : nil
        }.result
    }

    /// Tgetattr of a walked fid.
    public func stat(_ walked: WalkedFid, _ mask: UInt64 = GetattrMask.basic | GetattrMask.btime) async throws -> FileAttributes {
        let fid = walked.fid
        return try await call(.getattr) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.getattr(fid: fid, mask: mask).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .getattr(attributes) = response else { throw .protocolViolation(.getattr) }
            return FileAttributes(attributes)
        }
    }

    /// The walked fid as a file of its own, named `name` in this directory.
    public func adopt(_ walked: WalkedFid, name: ByteView) -> RemoteFile {
        RemoteFile(client: client, fid: walked.fid, qid: walked.qid, path: childPath(name), root: root)
    }

    /// Clunks the walked fid: in the background when the housekeeper's queue has room (no
    /// allocation, no wait), else now.
    public func discard(_ walked: WalkedFid) async {
        if !connection.clunkLaterWithoutGrowing(walked.fid) { await client.clunk(walked.fid) }
    }

    /// A new fid for the same file (Twalk of no names), not opened.
    public func clone() async throws -> RemoteFile {
        try checkUsable(.walk)
        let (newfid, _) = try await client.walk(from: fid, [], path: path)
        return RemoteFile(client: client, fid: newfid, qid: qid, path: path, root: root)
    }

    /// Tlopen with the Linux open flags as they are (9P2000.L uses Linux's numbering).
    public func open(flags: UInt32) async throws {
        let fid = self.fid
        let iounit = try await call(.open) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.lopen(fid: fid, flags: flags).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .lopen(_, iounit) = response else { throw .protocolViolation(.open) }
            return iounit
        }
        setIOUnit(iounit)
        noteOpened(flags: flags)
    }

    /// Tlcreate `name` in this directory: this fid becomes the new file, opened with `flags`.
    /// Returns the new file's qid.
    public func create(_ name: ByteView, flags: UInt32, mode: UInt32, gid: UInt32) async throws -> Qid {
        let fid = self.fid
        let (qid, iounit) = try await call(.create) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.lcreate(fid: fid, name: name, flags: flags, mode: mode, gid: gid).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .lcreate(qid, iounit) = response else { throw .protocolViolation(.create) }
            return (qid, iounit)
        }
        setIOUnit(iounit)
        noteCreated(name, qid: qid, flags: flags)
        return qid
    }

    /// `create`, with Tgetattr of the same fid sent right behind the Tlcreate (one round trip
    /// for both): the new file's qid and its attributes. 9P lets a server run the two in either
    /// order, so the attributes count only when their qid is the new file's; otherwise (the
    /// Tgetattr saw the directory), or when no request slot was free to send it ahead, this
    /// asks again once the create is done.
    public func createAndStat(_ name: ByteView, flags: UInt32, mode: UInt32, gid: UInt32, mask: UInt64 = GetattrMask.basic | GetattrMask.btime) async throws -> (Qid, FileAttributes) {
        try checkUsable(.create)
        let fid = self.fid
        let following = connection.prepareFollowing { (w: inout WireWriter, tag) throws(WireError) in
            try Request.getattr(fid: fid, mask: mask).encode(tag: tag, into: &w)
        }
        let qid: Qid
        let iounit: UInt32
        do {
            (qid, iounit) = try await connection.call(.create, timeout: client.callTimeout, keepingReply: false, following: following) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.lcreate(fid: fid, name: name, flags: flags, mode: mode, gid: gid).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case let .lcreate(qid, iounit) = response else { throw .protocolViolation(.create) }
                return (qid, iounit)
            }.result
        } catch {
            // Refused by the server: its Rgetattr is on its way. Otherwise (cancelled, timed
            // out, lost) the server may not answer it: flushed.
            if let following { connection.abandon(following, flush: (error as? NinePError)?.kind != .server) }
            throw (error as? NinePError)?.at(path) ?? error
        }
        setIOUnit(iounit)
        noteCreated(name, qid: qid, flags: flags)
        if let following {
            do {
                // Nil: run before the create, on what was then the directory; asked again below.
                if let attributes = try await collectAttributes(following, of: qid, on: connection) { return (qid, attributes) }
            } catch let error as NinePError {
                throw error.at(path)
            }
        }
        return (qid, try await stat(mask))
    }

    /// The reply to a Tgetattr sent behind the request that made the file of `qid`: its
    /// attributes, or nil when the server ran it first (an error, or another file's qid). Either
    /// way counted for the connection's choice to go on sending followers.
    private func collectAttributes(_ following: FollowingRequest, of qid: Qid, on connection: ClientConnection) async throws -> FileAttributes? {
        let attributes: FileAttributes
        do {
            attributes = try await connection.collect(following, .getattr, timeout: client.callTimeout) { response throws(NinePError) in
                guard case let .getattr(attributes) = response else { throw .protocolViolation(.getattr) }
                return FileAttributes(attributes)
            }
        } catch let error as NinePError where error.kind == .server {
            connection.noteFollowerCollected(ranFirst: true)
            return nil
        }
        let inOrder = attributes.qid.path == qid.path && attributes.qid.type == qid.type
        connection.noteFollowerCollected(ranFirst: !inOrder)
        return inOrder ? attributes : nil
    }

    /// Tmkdir `name` in this directory.
    public func mkdir(_ name: ByteView, mode: UInt32, gid: UInt32) async throws -> Qid {
        let fid = self.fid
        return try await call(.mkdir) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.mkdir(dfid: fid, name: name, mode: mode, gid: gid).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .mkdir(qid) = response else { throw .protocolViolation(.mkdir) }
            return qid
        }
    }

    /// Tmknod `name` in this directory (a FIFO, socket or device node).
    public func mknod(_ name: ByteView, mode: UInt32, major: UInt32, minor: UInt32, gid: UInt32) async throws -> Qid {
        let fid = self.fid
        return try await call(.mknod) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.mknod(dfid: fid, name: name, mode: mode, major: major, minor: minor, gid: gid).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .mknod(qid) = response else { throw .protocolViolation(.mknod) }
            return qid
        }
    }

    /// Tsymlink `name` -> `target` in this directory.
    public func symlink(_ name: ByteView, target: ByteView, gid: UInt32) async throws -> Qid {
        let fid = self.fid
        return try await call(.symlink) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.symlink(fid: fid, name: name, target: target, gid: gid).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .symlink(qid) = response else { throw .protocolViolation(.symlink) }
            return qid
        }
    }

    /// Tlink: a hard link `name` in this directory to `file`.
    public func link(_ file: RemoteFile, as name: ByteView) async throws {
        let dfid = self.fid
        let target = file.fid
        try await call(.link) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.link(dfid: dfid, fid: target, name: name).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case .link = response else { throw .protocolViolation(.link) }
        }
    }

    /// Tunlinkat `name` in this directory (`directory`: AT_REMOVEDIR); on servers without it
    /// (diod), Tremove of a fid walked to `name`.
    public func unlink(_ name: ByteView, directory: Bool) async throws {
        let fid = self.fid
        let flags = directory ? UnlinkFlags.removeDir : 0
        do {
            try await call(.unlinkat) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.unlinkat(dirfid: fid, name: name, flags: flags).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case .unlinkat = response else { throw .protocolViolation(.unlinkat) }
            }
        } catch let error as NinePError where error.kind == .server && (error.errno == EOPNOTSUPP || error.errno == ENOSYS) {
            let file = try await walk(name)
            // Tremove does not say which kind it removes: check first, as unlinkat would.
            let isDirectory = file.qid.isDirectory
            if isDirectory != directory {
                await file.close()
                throw NinePError(.server, errno: directory ? ENOTDIR : EISDIR, operation: .remove, path: file.path)
            }
            let victim = file.fid
            // Tremove clunks the fid whatever the answer.
            file.markClosed()
            do {
                try await connection.call(.remove, undo: .releaseFid(victim), timeout: client.callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                    try Request.remove(fid: victim).encode(tag: tag, into: &w)
                } decode: { response throws(NinePError) in
                    guard case .remove = response else { throw .protocolViolation(.remove) }
                }
                connection.releaseFid(victim)
            } catch let error as NinePError where error.kind == .server {
                connection.releaseFid(victim)
                throw error.at(file.path)
            }
        }
    }

    /// Trenameat `name` in this directory to `newName` in `newDirectory` (replacing what is there);
    /// on servers without it (diod), Trename of a fid walked to `name`.
    public func rename(_ name: ByteView, to newDirectory: RemoteFile, _ newName: ByteView) async throws {
        let olddir = self.fid
        let newdir = newDirectory.fid
        do {
            try await call(.renameat) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.renameat(olddirfid: olddir, oldname: name, newdirfid: newdir, newname: newName).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case .renameat = response else { throw .protocolViolation(.renameat) }
            }
        } catch let error as NinePError where error.kind == .server && (error.errno == EOPNOTSUPP || error.errno == ENOSYS) {
            let file = try await walk(name)
            let fid = file.fid
            do {
                try await call(.rename) { (w: inout WireWriter, tag) throws(WireError) in
                    try Request.rename(fid: fid, dfid: newdir, name: newName).encode(tag: tag, into: &w)
                } decode: { response throws(NinePError) in
                    guard case .rename = response else { throw .protocolViolation(.rename) }
                }
            } catch {
                await file.close()
                throw error
            }
            await file.close()
        }
    }

    /// Treadlink of this fid; `body` sees the target while the reply is held (no copy).
    public func readlink<R>(_ body: (ByteView) -> R) async throws -> R {
        let fid = self.fid
        return try await call(.readlink) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.readlink(fid: fid).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .readlink(target) = response else { throw .protocolViolation(.readlink) }
            return body(target)
        }
    }

    /// Tstatfs of the file system holding this fid.
    public func statfs() async throws -> FileSystemStatistics {
        let fid = self.fid
        return try await call(.statfs) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.statfs(fid: fid).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .statfs(fields) = response else { throw .protocolViolation(.statfs) }
            return FileSystemStatistics(fields)
        }
    }

    /// One Treaddir of at most `count` bytes from `offset` on this open directory; `body` sees
    /// each entry in place (views into the reply) and returns false to stop early. Returns how
    /// many entries the server sent (0: the end).
    public func readDirectory(at offset: UInt64, count: Int, _ body: (DirEntry) -> Bool) async throws -> Int {
        let fid = self.fid
        let asked = UInt32(max(0, min(count, ioSize)))
        return try await call(.readdir) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.readdir(fid: fid, offset: offset, count: asked).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .readdir(entries) = response else { throw .protocolViolation(.readdir) }
            var sent = 0
            var stopped = false
            for entry in entries {
                sent += 1
                if !stopped && !body(entry) { stopped = true }
            }
            return sent
        }
    }

    // MARK: Helpers

    func setIOUnit(_ iounit: UInt32) { state.withLock { $0.iounit = iounit } }

    /// One call on this fid; errors name its path.
    func call<R>(
        _ operation: NinePOperation,
        encode: (inout WireWriter, UInt16) throws(WireError) -> Void,
        decode: (Response) throws(NinePError) -> R
    ) async throws -> R {
        do {
            try checkUsable(operation)
            return try await connection.call(operation, timeout: client.callTimeout, encode: encode, decode: decode)
        } catch let error as NinePError {
            throw error.at(path)
        }
    }
}
