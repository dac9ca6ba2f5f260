import Glibc
import NinePWire

extension NinePClient {
    /// Attaches the same export again on this connection as another user (Tattach to a new fid,
    /// `uname` and `uid` as n_uname): the root of a tree the server then serves with that user's
    /// permissions, as the Linux client's access=user does for each calling user. The returned
    /// fid is the root, not opened; closing it ends that attach.
    public func attach(uname: String, uid: UInt32) async throws -> RemoteFile {
        let aname = configuration.aname
        // One connection for the fid number and the call: a reconnect in between must not
        // hand this number (from the old connection's allocator) to the new one.
        let connection = self.connection
        let fid = connection.allocateFid()
        do {
            // Flushed before the server answered, the attach may still have made the fid: clunk
            // it once the request settles (a clunk of a fid never made only frees the number).
            let qid = try await connection.attach(fid: fid, uname: uname, aname: aname, uid: uid, undo: .clunk(fid: fid), timeout: callTimeout)
            return RemoteFile(client: self, fid: fid, qid: qid, path: "/", root: fid, attachedAs: RemoteFile.AttachIdentity(uname: uname, uid: uid))
        } catch let error as NinePError {
            if error.kind == .server { connection.releaseFid(fid) } else if error.kind == .protocolViolation { connection.clunkLater(fid) }
            throw error.at(aname.isEmpty ? "/" : aname)
        }
    }
}
