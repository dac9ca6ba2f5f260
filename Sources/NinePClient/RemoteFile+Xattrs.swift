import Glibc
import NinePWire

/// Extended attributes of this fid's file, for front ends that hold fids (the FUSE mount).
extension RemoteFile {
    /// Txattrwalk: a new fid whose content is the value of attribute `name` (the empty name: the
    /// NUL-terminated list of names), and its size. Read it with `read(into:at:)`; close it.
    public func xattrWalk(_ name: ByteView) async throws -> (RemoteFile, UInt64) {
        try checkUsable(.xattrwalk)
        let fid = self.fid
        // One connection for the fid number and the call: a reconnect in between must not
        // hand this number (from the old connection's allocator) to the new one.
        let connection = self.connection
        let newfid = connection.allocateFid()
        do {
            let size = try await connection.call(.xattrwalk, undo: .walk(newfid: newfid, names: 0), timeout: client.callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.xattrwalk(fid: fid, newfid: newfid, name: name).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case let .xattrwalk(size) = response else { throw .protocolViolation(.xattrwalk) }
                return size
            }
            let attribute = RemoteFile(client: client, fid: newfid, qid: qid, path: path, root: root)
            // A walk by path cannot make an attribute fid again.
            attribute.noteUnrecoverable()
            return (attribute, size)
        } catch let error as NinePError {
            if error.kind == .server { connection.releaseFid(newfid) } else if error.kind == .protocolViolation { connection.clunkLater(newfid) }
            throw error.at(path)
        }
    }

    /// Sets attribute `name` to `value` (`flags`: 0, XATTR_CREATE 1, XATTR_REPLACE 2) on a
    /// clone of this fid: Txattrcreate, Twrite of the value, and Tclunk, which commits it and
    /// reports the server's verdict. An empty value with XATTR_REPLACE removes the attribute
    /// (as the kernel client does).
    public func setXattr(_ name: ByteView, value: ByteView, flags: UInt32) async throws {
        let file = try await clone()
        let fid = file.fid
        let size = UInt64(value.count)
        do {
            try await call(.xattrcreate) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.xattrcreate(fid: fid, name: name, size: size, flags: flags).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case .xattrcreate = response else { throw .protocolViolation(.xattrcreate) }
            }
            var done = 0
            while done < value.count {
                let n = try await file.write(UnsafeRawBufferPointer(rebasing: value.base[done...]), at: UInt64(done))
                guard n > 0 else { throw NinePError(.server, errno: EIO, operation: .write, path: path) }
                done += n
            }
        } catch {
            await file.close()
            throw error
        }
        file.markClosed()
        if let failure = try await client.clunkAnswered(fid) { throw failure.at(path) }
    }
}
