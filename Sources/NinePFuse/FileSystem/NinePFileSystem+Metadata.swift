import Glibc
import NinePClient
import NinePWire

/// LOOKUP, GETATTR, SETATTR, READLINK, STATFS.
extension NinePFileSystem {
    /// A name that is not there is answered as a negative entry (node id 0) valid for the entry
    /// timeout, so the kernel does not ask again for it meanwhile (shells searching PATH,
    /// compilers probing include directories); a create through this mount replaces it at once.
    func lookup(_ parent: UInt64, _ name: ByteView) async throws -> FuseEntryOut {
        let directory = try node(parent)
        let child: WalkedFid
        do {
            child = try await directory.walkFid(name)
        } catch let error as NinePError where error.kind == .server && error.errno == ENOENT && options.entryTimeout > .zero {
            var negative = FuseEntryOut()
            (negative.entryValidSeconds, negative.entryValidNanoseconds) = split(options.entryTimeout)
            return negative
        }
        // A node that already holds this file (the common case: the kernel asks again once the
        // entry timeout passed) takes the lookup without a new object; the walked fid goes.
        let attributes: FileAttributes
        do {
            attributes = try await directory.stat(child)
        } catch {
            await directory.discard(child)
            throw error
        }
        if let id = nodes.recordLookup(of: child.qid) {
            await directory.discard(child)
            return entryOut(id, attributes)
        }
        let file = directory.adopt(child, name: name)
        guard let id = nodes.remember(file) else {
            await file.close()
            throw tableFull(1, "the node table is full (\(nodes.capacity) nodes, -o max_nodes): lookups answer ENFILE until the kernel forgets some")
        }
        return entryOut(id, attributes)
    }

    func getattr(_ nodeID: UInt64, _ fields: FuseGetattrIn) async throws -> FuseAttrOut {
        // Through the open handle when the kernel names one: it still reaches a file that was
        // unlinked while open.
        let file = try fields.flags & FuseGetattrIn.flagFH != 0 ? (handles.file(fields.fh) ?? node(nodeID)) : node(nodeID)
        return attrOut(try await file.stat())
    }

    func setattr(_ nodeID: UInt64, _ s: FuseSetattrIn) async throws -> FuseAttrOut {
        let file = try s.valid.contains(.fh) ? (handles.file(s.fh) ?? node(nodeID)) : node(nodeID)
        var changes = AttributeChanges()
        if s.valid.contains(.mode) { changes.mode = s.mode & 0o7777 }
        if s.valid.contains(.uid) { changes.uid = s.uid }
        if s.valid.contains(.gid) { changes.gid = s.gid }
        if s.valid.contains(.size) { changes.size = s.size }
        if s.valid.contains(.atime) {
            changes.accessTime = s.valid.contains(.atimeNow) ? .now : .set(Timestamp(seconds: s.atime, nanoseconds: UInt64(s.atimeNanoseconds)))
        }
        if s.valid.contains(.mtime) {
            changes.modificationTime = s.valid.contains(.mtimeNow) ? .now : .set(Timestamp(seconds: s.mtime, nanoseconds: UInt64(s.mtimeNanoseconds)))
        }
        // ctime, lock owner and kill-suid alone change nothing the server is told about.
        if changes != AttributeChanges() { try await file.setAttributes(changes) }
        return attrOut(try await file.stat())
    }

    func readlink(_ nodeID: UInt64, unique: UInt64, into out: UnsafeMutableRawBufferPointer) async throws -> Int {
        let file = try node(nodeID)
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
        let file = try nodes.file(nodeID) ?? node(FuseProtocol.rootID)
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
