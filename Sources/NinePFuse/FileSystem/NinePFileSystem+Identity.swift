import Glibc
import NinePClient
import NinePWire

/// Whose fid a request uses (see `IdentityOptions`), entry replies that record the name a node
/// is known by, and the uid/gid mapping.
extension NinePFileSystem {
    /// For the status line: per-user attaches and fids, when callers have their own.
    public var identitySummary: String {
        guard let userFids else { return "" }
        return ", \(userFids.rootCount) users attached, \(userFids.count) of \(userFids.capacity) per-user fids (\(userFids.evictions) evicted)"
    }

    /// Whether `header`'s caller has attaches of its own (rather than the mount's).
    @inline(__always)
    func callsAsItself(_ header: FuseInHeader) -> Bool {
        userFids != nil && header.uid != options.identity.attachUID
    }

    /// The fid of `nodeID` for the caller: the node's own (the mount's attach) unless the caller
    /// has attaches of its own; then its fid, walked by name from its fid of the node's parent
    /// the first time (checking its search permission on the way, as the server sees it).
    func node(_ nodeID: UInt64, for header: FuseInHeader) async throws -> RemoteFile {
        guard let userFids, header.uid != options.identity.attachUID else { return try await node(nodeID) }
        return try await userFile(nodeID, uid: header.uid, userFids, depth: 0)
    }

    /// Deeper than this, a chain of recorded parents is taken to be a loop (stale names after
    /// renames elsewhere): ESTALE, and the kernel looks the name up again.
    static let maxNameDepth = 4096

    private func userFile(_ nodeID: UInt64, uid: UInt32, _ userFids: UserFids, depth: Int) async throws -> RemoteFile {
        if let file = userFids.file(nodeID, uid: uid) { return file }
        if nodeID == FuseProtocol.rootID { return try await userRoot(uid, userFids) }
        guard depth < Self.maxNameDepth, let base = nodes.qid(of: nodeID), let name = userFids.name(of: nodeID) else { throw FuseFailure(ESTALE) }
        let parent = try await userFile(name.parent, uid: uid, userFids, depth: depth + 1)
        let walked = try await parent.walk(name.name)
        // The name may meanwhile be another file's (replaced on the server): not this node.
        guard walked.qid.path == base.path else {
            await walked.close()
            throw FuseFailure(ESTALE)
        }
        return keep(walked, node: nodeID, uid: uid, userFids)
    }

    private func keep(_ file: RemoteFile, node: UInt64, uid: UInt32, _ userFids: UserFids, replacing: Bool = false) -> RemoteFile {
        let (kept, dropped) = userFids.insert(file, node: node, uid: uid, replacing: replacing)
        _ = dropped  // clunked in the background as it goes
        return kept
    }

    /// `uid`'s root: an attach as that user (n_uname the server's number for it; uname its local
    /// login name when it has one and is not mapped, else empty: the server goes by the number).
    private func userRoot(_ uid: UInt32, _ userFids: UserFids) async throws -> RemoteFile {
        if let root = userFids.root(uid) { return root }
        let identity = options.identity
        let serverUID = identity.uidMap.server(uid)
        let uname = serverUID == uid ? Self.loginName(of: uid) : ""
        let attached = try await client.attach(uname: uname, uid: serverUID)
        let (kept, unused) = userFids.setRoot(attached, for: uid)
        if let unused { await unused.close() }
        return kept
    }

    static func loginName(of uid: UInt32) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var scratch = [CChar](repeating: 0, count: 1024)
        if getpwuid_r(uid, &entry, &scratch, scratch.count, &result) == 0, result != nil, let name = entry.pw_name {
            return String(cString: name)
        }
        return ""
    }

    // MARK: Entries

    /// The entry for `name`, just made in `directory` (node `parent`) by MKDIR, MKNOD, SYMLINK or
    /// LINK: walked and stat'd in one round trip (`walkFidAndStat`), unless the caller has
    /// attaches of its own (then as `entry(for:in:named:)`).
    func entry(ofNew name: ByteView, in directory: RemoteFile, parent: UInt64, _ header: FuseInHeader) async throws -> FuseEntryOut {
        guard userFids == nil else { return try await entry(for: try await directory.walk(name), in: parent, named: name, header) }
        let (walked, attributes) = try await directory.walkFidAndStat(name)
        return answered(entryOut(try await remembered(directory.adopt(walked, name: name)), attributes))
    }

    /// The entry for `walked`, a fid just walked to `name` in `parent` with the caller's fid:
    /// counts the lookup, records the name (for other users' walks), and maps the ids. When the
    /// caller has attaches of its own, `walked` becomes its fid for the node, and a node new to
    /// the mount gets a fid of the mount's own attach, walked from the parent's node fid.
    func entry(for walked: RemoteFile, in parent: UInt64, named name: ByteView, _ header: FuseInHeader) async throws -> FuseEntryOut {
        guard let userFids else { return answered(try await entry(for: walked)) }
        guard callsAsItself(header) else {
            let entry = try await entry(for: walked)
            userFids.recordName(entry.nodeID, parent: parent, name: name)
            return answered(entry)
        }
        let attributes: FileAttributes
        do {
            attributes = try await walked.stat()
        } catch {
            await walked.close()
            throw error
        }
        let nodeID: UInt64
        if let known = nodes.recordLookup(of: walked.qid) {
            nodeID = known
        } else {
            let base: RemoteFile
            do {
                base = try await node(parent).walk(name)
            } catch {
                await walked.close()
                throw error
            }
            if base.qid.path != walked.qid.path {
                // Replaced between the two walks: the node is the newer file; the caller's fid
                // is not for it. (Stat first: a lookup is counted only for an entry answered.)
                await walked.close()
                let newer = try await base.stat()
                let id = try await remembered(base)
                userFids.recordName(id, parent: parent, name: name)
                return answered(entryOut(id, newer))
            }
            nodeID = try await remembered(base)
        }
        userFids.recordName(nodeID, parent: parent, name: name)
        // The fid just walked replaces an older one: on servers whose fids name paths (diod) the
        // older may name a link that is gone by now (a hard link's first name, unlinked).
        _ = keep(walked, node: nodeID, uid: header.uid, userFids, replacing: true)
        return answered(entryOut(nodeID, attributes))
    }

    /// After a rename: the moved node (found by its qid) is known by its new name, and per-user
    /// fids of it are walked again (servers whose fids name paths left them at the old one).
    func renamed(_ moved: Qid, to parent: UInt64, _ name: ByteView) {
        guard let userFids, let id = nodes.id(of: moved) else { return }
        userFids.recordName(id, parent: parent, name: name)
        userFids.dropFids(of: id)
    }

    // MARK: Ids

    /// An entry on its way to the kernel: setgid directories noted, ids mapped.
    @inline(__always)
    func answered(_ entry: FuseEntryOut) -> FuseEntryOut {
        var entry = entry
        setgidDirectories.note(entry.nodeID, mode: entry.attr.mode, gid: entry.attr.gid)
        mapToLocal(&entry.attr)
        return entry
    }

    /// GETATTR's and SETATTR's answer for `node`, noted the same way.
    @inline(__always)
    func attrOut(_ node: UInt64, _ attributes: FileAttributes) -> FuseAttrOut {
        setgidDirectories.note(node, mode: attributes.mode, gid: attributes.gid)
        return attrOut(attributes)
    }

    /// The group a new file in `header.nodeID` is created with: the directory's when it is
    /// setgid (as a local file system, and the Linux client, do), else the caller's.
    @inline(__always)
    func creationGroup(_ header: FuseInHeader) -> UInt32 {
        setgidDirectories.group(of: header.nodeID) ?? serverGID(header.gid)
    }

    /// FORGET took the node away.
    func forgotten(_ node: UInt64) {
        xattrAbsence.forget(node)
        setgidDirectories.forget(node)
        userFids?.forget(node)
    }

    /// The server's owner and group as this host numbers them.
    @inline(__always)
    func mapToLocal(_ attr: inout FuseAttr) {
        let identity = options.identity
        if !identity.uidMap.isEmpty { attr.uid = identity.uidMap.local(attr.uid) }
        if !identity.gidMap.isEmpty { attr.gid = identity.gidMap.local(attr.gid) }
    }

    /// A group to create with or chown to, as the server numbers it.
    @inline(__always)
    func serverGID(_ gid: UInt32) -> UInt32 { options.identity.gidMap.server(gid) }

    @inline(__always)
    func serverUID(_ uid: UInt32) -> UInt32 { options.identity.uidMap.server(uid) }
}
