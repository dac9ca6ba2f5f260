import NinePWire

extension ClientConnection {
    /// Tattach of `fid` (no authentication; `uid` as n_uname): the root's qid. The one encoding
    /// of Tattach, for connecting, per-user attaches and re-attaching after a reconnect.
    func attach(fid: UInt32, uname: String, aname: String, uid: UInt32, undo: Undo = .none, timeout: Duration?) async throws -> Qid {
        try await call(.attach, undo: undo, timeout: timeout) { (w: inout WireWriter, tag) throws(WireError) in
            try w.beginFrame(.tattach, tag: tag)
            try w.u32(fid); try w.u32(NineP.noFid)
            try w.string(uname); try w.string(aname); try w.u32(uid)
            w.finishFrame()
        } decode: { response throws(NinePError) in
            guard case let .attach(qid) = response else { throw .protocolViolation(.attach) }
            return qid
        }
    }
}
