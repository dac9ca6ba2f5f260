import Glibc
import NinePWire

/// Path operations: each walks to what it needs, does one thing, and clunks what it walked.
extension NinePClient {
    /// Opens `path` (walk, then Tlopen).
    public func open(_ path: String, _ mode: AccessMode = .read, options: OpenOptions = []) async throws -> RemoteFile {
        let file = try await walk(path)
        do {
            try await file.open(mode, options: options)
        } catch {
            await file.close()
            throw error
        }
        return file
    }

    /// Creates and opens a file (Tlcreate). With `.exclusive` an existing file is an error
    /// (EEXIST); without it, Tlcreate still fails with EEXIST on most servers, so use `open`
    /// with `.truncate` to overwrite.
    public func create(_ path: String, permissions: UInt32 = 0o644, _ mode: AccessMode = .readWrite, options: OpenOptions = []) async throws -> RemoteFile {
        guard let (parent, name) = PathComponents(path).parentAndName else {
            throw NinePError(.invalidArgument, errno: EEXIST, operation: .create, path: path)
        }
        let (fid, _) = try await walk(from: FidAllocator.root, parent, path: path)
        let flags = mode.flags | options.rawValue | OpenFlags.create
        let gid = creationGroup
        do {
            let (qid, iounit) = try await connection.call(.create, undo: .clunk(fid: fid), timeout: callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                try w.beginFrame(.tlcreate, tag: tag)
                try w.u32(fid); try w.string(name); try w.u32(flags); try w.u32(permissions); try w.u32(gid)
                w.finishFrame()
            } decode: { response throws(NinePError) in
                guard case let .lcreate(qid, iounit) = response else { throw .protocolViolation(.create) }
                return (qid, iounit)
            }
            let file = RemoteFile(client: self, fid: fid, qid: qid, path: path, iounit: iounit)
            await file.acquireLocalGrant(options: options)
            return file
        } catch let error as NinePError {
            if error.kind == .server || error.kind == .protocolViolation { await clunk(fid) }
            throw error.at(path)
        }
    }

    /// Tgetattr of `path`.
    public func stat(_ path: String) async throws -> FileAttributes {
        let file = try await walk(path)
        do {
            let attributes = try await file.stat()
            await file.close()
            return attributes
        } catch {
            await file.close()
            throw error
        }
    }

    /// Tsetattr of `path`.
    public func setAttributes(_ path: String, _ changes: AttributeChanges) async throws {
        let file = try await walk(path)
        do {
            try await file.setAttributes(changes)
        } catch {
            await file.close()
            throw error
        }
        await file.close()
    }

    /// Tmkdir: a new directory; returns its qid.
    @discardableResult
    public func mkdir(_ path: String, permissions: UInt32 = 0o755) async throws -> Qid {
        let (parent, name) = try splitForCreation(path, .mkdir)
        let gid = creationGroup
        return try await withFid(path, parent) { dfid in
            try await call(.mkdir, path) { (w: inout WireWriter, tag) throws(WireError) in
                try w.beginFrame(.tmkdir, tag: tag)
                try w.u32(dfid); try w.string(name); try w.u32(permissions); try w.u32(gid)
                w.finishFrame()
            } decode: { response throws(NinePError) in
                guard case let .mkdir(qid) = response else { throw .protocolViolation(.mkdir) }
                return qid
            }
        }
    }

    /// Removes a file, or an empty directory with `directory: true` (Tunlinkat; Tremove on
    /// servers without it).
    public func remove(_ path: String, directory: Bool = false) async throws {
        let (parent, name) = try splitForCreation(path, .unlinkat)
        let flags = directory ? UnlinkFlags.removeDir : 0
        do {
            try await withFid(path, parent) { dfid in
                try await call(.unlinkat, path) { (w: inout WireWriter, tag) throws(WireError) in
                    try w.beginFrame(.tunlinkat, tag: tag)
                    try w.u32(dfid); try w.string(name); try w.u32(flags)
                    w.finishFrame()
                } decode: { response throws(NinePError) in
                    guard case .unlinkat = response else { throw .protocolViolation(.unlinkat) }
                }
            }
        } catch let error as NinePError where error.kind == .server && (error.errno == EOPNOTSUPP || error.errno == ENOSYS) {
            try await removeByFid(path)
        }
    }

    /// Tremove: removes the file and clunks the fid, whatever the answer.
    private func removeByFid(_ path: String) async throws {
        let (fid, _) = try await walk(from: FidAllocator.root, PathComponents(path).names, path: path)
        do {
            try await call(.remove, path, undo: .releaseFid(fid)) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.remove(fid: fid).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case .remove = response else { throw .protocolViolation(.remove) }
            }
            connection.releaseFid(fid)
        } catch let error as NinePError where error.kind == .server {
            connection.releaseFid(fid)
            throw error
        }
    }

    /// Renames `source` to `destination` (Trenameat; Trename on servers without it).
    public func rename(_ source: String, to destination: String) async throws {
        let (oldParent, oldName) = try splitForCreation(source, .renameat)
        let (newParent, newName) = try splitForCreation(destination, .renameat)
        do {
            try await withFid(source, oldParent) { olddir in
                try await withFid(destination, newParent) { newdir in
                    try await call(.renameat, source) { (w: inout WireWriter, tag) throws(WireError) in
                        try w.beginFrame(.trenameat, tag: tag)
                        try w.u32(olddir); try w.string(oldName); try w.u32(newdir); try w.string(newName)
                        w.finishFrame()
                    } decode: { response throws(NinePError) in
                        guard case .renameat = response else { throw .protocolViolation(.renameat) }
                    }
                }
            }
        } catch let error as NinePError where error.kind == .server && (error.errno == EOPNOTSUPP || error.errno == ENOSYS) {
            try await withFid(source) { fid in
                try await withFid(destination, newParent) { newdir in
                    try await call(.rename, source) { (w: inout WireWriter, tag) throws(WireError) in
                        try w.beginFrame(.trename, tag: tag)
                        try w.u32(fid); try w.u32(newdir); try w.string(newName)
                        w.finishFrame()
                    } decode: { response throws(NinePError) in
                        guard case .rename = response else { throw .protocolViolation(.rename) }
                    }
                }
            }
        }
    }

    /// Tsymlink: a symbolic link at `path` pointing to `target` (stored as is).
    @discardableResult
    public func symlink(_ target: String, at path: String) async throws -> Qid {
        let (parent, name) = try splitForCreation(path, .symlink)
        let gid = creationGroup
        return try await withFid(path, parent) { dfid in
            try await call(.symlink, path) { (w: inout WireWriter, tag) throws(WireError) in
                try w.beginFrame(.tsymlink, tag: tag)
                try w.u32(dfid); try w.string(name); try w.string(target); try w.u32(gid)
                w.finishFrame()
            } decode: { response throws(NinePError) in
                guard case let .symlink(qid) = response else { throw .protocolViolation(.symlink) }
                return qid
            }
        }
    }

    /// Tlink: a hard link at `path` to the existing file `existing`.
    public func link(_ existing: String, at path: String) async throws {
        let (parent, name) = try splitForCreation(path, .link)
        try await withFid(existing) { fid in
            try await withFid(path, parent) { dfid in
                try await call(.link, path) { (w: inout WireWriter, tag) throws(WireError) in
                    try w.beginFrame(.tlink, tag: tag)
                    try w.u32(dfid); try w.u32(fid); try w.string(name)
                    w.finishFrame()
                } decode: { response throws(NinePError) in
                    guard case .link = response else { throw .protocolViolation(.link) }
                }
            }
        }
    }

    /// Treadlink: the target of the symbolic link at `path`.
    public func readlink(_ path: String) async throws -> String {
        try await withFid(path) { fid in
            try await call(.readlink, path) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.readlink(fid: fid).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case let .readlink(target) = response else { throw .protocolViolation(.readlink) }
                return target.makeString()
            }
        }
    }

    /// Tstatfs of the file system holding `path`.
    public func statfs(_ path: String = "/") async throws -> FileSystemStatistics {
        try await withFid(path) { fid in
            try await call(.statfs, path) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.statfs(fid: fid).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case let .statfs(fields) = response else { throw .protocolViolation(.statfs) }
                return FileSystemStatistics(fields)
            }
        }
    }

    /// The entries of the directory at `path`, fetched as the loop consumes them.
    public func readdir(_ path: String) -> DirectoryListing { DirectoryListing(client: self, path: path) }

    // MARK: Helpers

    /// One call on behalf of a path operation; errors name the path.
    func call<R>(
        _ operation: NinePOperation, _ path: String, undo: Undo = .none,
        encode: (inout WireWriter, UInt16) throws(WireError) -> Void,
        decode: (Response) throws(NinePError) -> R
    ) async throws -> R {
        do {
            return try await connection.call(operation, undo: undo, timeout: callTimeout, encode: encode, decode: decode)
        } catch let error as NinePError {
            throw error.at(path)
        }
    }

    func splitForCreation(_ path: String, _ operation: NinePOperation) throws(NinePError) -> ([String], String) {
        guard let (parent, name) = PathComponents(path).parentAndName else {
            throw NinePError(.invalidArgument, errno: EINVAL, operation: operation, path: path)
        }
        return (parent, name)
    }
}
