import Glibc
import NinePWire

/// What a reconnect must know about a fid besides its path and qid (see `Reconnector`). Kept
/// only when the client reconnects (`configuration.reconnect`); otherwise never written.
struct Recovery {
    /// The Tlopen (or Tlcreate) flags it was opened with; nil while not open.
    var openFlags: UInt32? = nil
    /// A Tlock was granted on it: the server dropped that lock with the connection, so the fid
    /// cannot come back as it was.
    var heldLock = false
    /// An attribute fid (Txattrwalk): no walk by path makes it again.
    var unrecoverable = false
    /// After Tlcreate the fid is the new file, not the directory it was walked to.
    var createdPath: String? = nil
    var createdQid: Qid? = nil
    /// Not 0: a reconnect could not bring the fid back; every call on it fails with this errno
    /// (ESTALE, or EIO for an open file), it is never walked to another file instead.
    var broken: Int32 = 0
}

extension RemoteFile {
    /// Fails when a reconnect could not bring this fid back.
    func checkUsable(_ operation: NinePOperation) throws(NinePError) {
        guard client.reconnector != nil else { return }
        let code = state.withLock { $0.recovery.broken }
        if code != 0 { throw NinePError(.server, errno: code, operation: operation, path: path) }
    }

    func noteOpened(flags: UInt32) {
        guard client.reconnector != nil else { return }
        state.withLock { $0.recovery.openFlags = flags }
    }

    func noteCreated(_ name: ByteView, qid: Qid, flags: UInt32) {
        guard client.reconnector != nil else { return }
        let created = path.hasSuffix("/") ? path + name.makeString() : path + "/" + name.makeString()
        state.withLock { state in
            state.recovery.openFlags = flags
            state.recovery.createdPath = created
            state.recovery.createdQid = qid
        }
    }

    func noteLockHeld() {
        guard client.reconnector != nil else { return }
        state.withLock { $0.recovery.heldLock = true }
    }

    func noteUnrecoverable() {
        guard client.reconnector != nil else { return }
        state.withLock { $0.recovery.unrecoverable = true }
    }

    /// True once a reconnect could not bring the fid back.
    public var isBroken: Bool { state.withLock { $0.recovery.broken != 0 } }
}
