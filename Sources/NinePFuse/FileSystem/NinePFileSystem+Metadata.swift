import Glibc
import NinePClient
import NinePWire

/// LOOKUP, GETATTR, SETATTR, READLINK, STATFS.
extension NinePFileSystem {
    /// A name that is not there is answered as a negative entry (node id 0) valid for the entry
    /// timeout, so the kernel does not ask again for it meanwhile (shells searching PATH,
    /// compilers probing include directories); a create through this mount replaces it at once.
    func lookup(_ header: FuseInHeader, _ name: ByteView) async throws -> FuseEntryOut {
        // A caller with attaches of its own walks with its own fid (NinePFileSystem+Identity).
        if callsAsItself(header) {
            let directory = try await node(header.nodeID, for: header)
            let child: RemoteFile
            do {
                child = try await directory.walk(name)
            } catch {
                if let negative = negativeEntry(for: error) { return negative }
                throw error
            }
            return try await entry(for: child, in: header.nodeID, named: name, header)
        }
        let directory = try await node(header.nodeID)
        // Twalk and Tgetattr in one round trip.
        let child: WalkedFid
        let attributes: FileAttributes
        do {
            (child, attributes) = try await directory.walkFidAndStat(name)
        } catch {
            if let negative = negativeEntry(for: error) { return negative }
            throw error
        }
        // A node that already holds this file (the common case: the kernel asks again once the
        // entry timeout passed) takes the lookup without a new object; the walked fid goes.
        let id: UInt64
        if let known = nodes.recordLookup(of: child.qid) {
            await directory.discard(child)
            id = known
        } else {
            id = try await remembered(directory.adopt(child, name: name))
        }
        userFids?.recordName(id, parent: header.nodeID, name: name)
        return answered(entryOut(id, attributes))
    }

    func getattr(_ header: FuseInHeader, _ fields: FuseGetattrIn) async throws -> FuseAttrOut {
        // Through the open handle when the kernel names one: it still reaches a file that was
        // unlinked while open.
        let byHandle = fields.flags & FuseGetattrIn.flagFH != 0 ? handles.file(fields.fh) : nil
        let file: RemoteFile
        if let byHandle { file = byHandle } else { file = try await node(header.nodeID, for: header) }
        return attrOut(header.nodeID, try await file.stat())
    }

    func setattr(_ header: FuseInHeader, _ s: FuseSetattrIn) async throws -> FuseAttrOut {
        let byHandle = s.valid.contains(.fh) ? handles.file(s.fh) : nil
        let file: RemoteFile
        if let byHandle { file = byHandle } else { file = try await node(header.nodeID, for: header) }
        var changes = AttributeChanges()
        if s.valid.contains(.mode) { changes.mode = s.mode & 0o7777 }
        if s.valid.contains(.uid) { changes.uid = serverUID(s.uid) }
        if s.valid.contains(.gid) { changes.gid = serverGID(s.gid) }
        if s.valid.contains(.size) { changes.size = s.size }
        if s.valid.contains(.atime) {
            changes.accessTime = s.valid.contains(.atimeNow) ? .now : .set(Timestamp(seconds: s.atime, nanoseconds: UInt64(s.atimeNanoseconds)))
        }
        if s.valid.contains(.mtime) {
            changes.modificationTime = s.valid.contains(.mtimeNow) ? .now : .set(Timestamp(seconds: s.mtime, nanoseconds: UInt64(s.mtimeNanoseconds)))
        }
        // ctime, lock owner and kill-suid alone change nothing the server is told about.
        if changes != AttributeChanges() { try await setAttributes(file, changes, header) }
        return attrOut(header.nodeID, try await file.stat())
    }

    func readlink(_ header: FuseInHeader, unique: UInt64, into out: UnsafeMutableRawBufferPointer) async throws -> Int {
        let file = try await node(header.nodeID, for: header)
        var reply = try FuseReply(into: out, unique: unique)
        let result: Result<Void, FuseCodecError> = try await file.readlink { target in
            do throws(FuseCodecError) {
                try reply.writer.bytes(target.base)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
        return reply.finish()
    }

    func statfs(_ nodeID: UInt64) async throws -> FuseStatfsOut {
        let file: RemoteFile
        if let known = nodes.file(nodeID) { file = known } else { file = try await node(FuseProtocol.rootID) }
        let s = try await file.statfs()
        var out = FuseStatfsOut()
        out.blocks = s.blocks
        out.blocksFree = s.blocksFree
        out.blocksAvailable = s.blocksAvailable
        out.files = s.files
        out.filesFree = s.filesFree
        out.blockSize = s.blockSize
        out.fragmentSize = s.blockSize
        out.nameLength = s.nameLength
        return out
    }
}
