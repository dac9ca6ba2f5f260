import Glibc
import NinePClient
import NinePWire

/// GETXATTR, LISTXATTR, SETXATTR, REMOVEXATTR: Txattrwalk and Txattrcreate on the node's fid.
/// 9P's list of names is NUL-terminated names, the same format listxattr(2) returns.
extension NinePFileSystem {
    /// XATTR_REPLACE: with an empty value, how 9P2000.L removes an attribute.
    static let xattrReplace: UInt32 = 2

    /// The value of `name` (or the list, for the empty name): its size when `size` is 0, else
    /// the bytes (ERANGE when they do not fit `size`).
    func getxattr(_ header: FuseInHeader, _ name: ByteView, size: UInt32, unique: UInt64, into out: UnsafeMutableRawBufferPointer) async throws -> Int {
        let nodeID = header.nodeID
        let absenceBit = XattrAbsence.bit(for: name)
        // Answered here, built as an error reply and not thrown, because Swift boxes every
        // thrown error (a malloc per write(2), two per `ls -l` entry).
        if let absenceBit, xattrAbsence.isKnownAbsent(nodeID, bit: absenceBit) { return try FuseReply.error(ENODATA, unique: unique, into: out) }
        let attribute: RemoteFile
        let length: UInt64
        do {
            (attribute, length) = try await node(nodeID, for: header).xattrWalk(name)
        } catch let error as NinePError where absenceBit != nil && error.kind == .server && error.errno == ENODATA {
            xattrAbsence.recordAbsent(nodeID, bit: absenceBit!)
            throw error
        }
        do {
            let result = try await readXattr(attribute, length: length, size: size, unique: unique, into: out)
            await attribute.close()
            return result
        } catch {
            await attribute.close()
            throw error
        }
    }

    private func readXattr(_ attribute: RemoteFile, length: UInt64, size: UInt32, unique: UInt64, into out: UnsafeMutableRawBufferPointer) async throws -> Int {
        if size == 0 {
            guard length <= UInt64(UInt32.max) else { throw FuseFailure(E2BIG) }
            return try FuseReply.with(FuseGetxattrOut(size: UInt32(length)), unique: unique, into: out)
        }
        guard length <= UInt64(size) else { throw FuseFailure(ERANGE) }
        var reply = try FuseReply(into: out, unique: unique)
        let start = reply.writer.offset
        guard Int(length) <= reply.writer.remaining else { throw FuseFailure(E2BIG) }
        var done = 0
        while done < Int(length) {
            let n = try await attribute.read(into: UnsafeMutableRawBufferPointer(rebasing: out[(start + done)..<(start + Int(length))]), at: UInt64(done))
            if n == 0 { break }
            done += n
        }
        try reply.writer.advance(done)
        return reply.finish()
    }

    func setxattr(_ header: FuseInHeader, _ name: ByteView, _ value: ByteView, flags: UInt32) async throws {
        if XattrAbsence.bit(for: name) != nil { xattrAbsence.forget(header.nodeID) }
        try await node(header.nodeID, for: header).setXattr(name, value: value, flags: flags)
    }

    func removexattr(_ header: FuseInHeader, _ name: ByteView) async throws {
        if XattrAbsence.bit(for: name) != nil { xattrAbsence.forget(header.nodeID) }
        try await node(header.nodeID, for: header).setXattr(name, value: .empty, flags: Self.xattrReplace)
    }
}
