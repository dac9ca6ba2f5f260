import Glibc
import NinePWire

/// The Tlocalrevoke a client keeps outstanding (docs/LOCALIO.md), parked here without a worker
/// until grants of its session are revoked, a Tflush names it, or the session ends.
///
/// `@unchecked Sendable`: `context` is read and written only with the connection's state lock
/// held (as `RequestContext`'s phase is), which orders every access.
final class RevocationPoll<Backend: FileSystemBackend>: @unchecked Sendable {
    /// The parked Tlocalrevoke; nil when none waits.
    var context: RequestContext<Backend>?

    /// Takes `target` out when it is the parked poll (Tflush, connection close; state lock
    /// held): true when it was, and the caller ends it without a reply.
    func cancelLocked(_ target: RequestContext<Backend>) -> Bool {
        guard let context, context === target else { return false }
        self.context = nil
        return true
    }
}

extension ServerConnection {
    /// Revokes grants of this session (`fids`, or all when nil) and answers its parked
    /// Tlocalrevoke when there is one. Returns how many grants were revoked.
    @discardableResult
    func revokeLocalGrants(fids: [UInt32]?) -> Int {
        let count = localIO.revoke(fids: fids)
        if count > 0 {
            for _ in 0..<count { statistics?.recordLocalIO(.revoked) }
            answerRevocationPoll()
        }
        return count
    }

    /// Answers the parked Tlocalrevoke with the revoked fids, if both exist. Whoever takes the
    /// context out under the state lock answers it: a revoking thread or the worker that just
    /// parked it (so a revocation between the worker's check and its parking is not missed).
    func answerRevocationPoll() {
        guard localIO.hasRevoked else { return }
        let taken: RequestContext<Backend>? = stateLock.withLock {
            guard let context = revocationPoll.context, !context.aborted, !closing else { return nil }
            revocationPoll.context = nil
            // Running from here: a Tflush now gets the reply first, then Rflush.
            context.phase = .running
            return context
        }
        guard let context = taken else { return }
        let length = Self.encodeRevoked(localIO, tag: context.message.tag, into: context.replyRegion)
        respond(context, replyLength: length)
    }

    /// Rlocalrevoke with as many revoked fids as the reply buffer holds (at most 1024; the
    /// rest go with the next one). Returns the frame length (0 when nothing could be encoded).
    static func encodeRevoked(_ session: LocalIOSession, tag: UInt16, into region: UnsafeMutableRawBufferPointer) -> Int {
        let limit = min(NineP.maxRevokedFids, max(0, (region.count - NineP.headerSize - 2) / 4))
        var length = 0
        session.takeRevoked(limit: limit) { fids in
            // Rare (a revocation), so an array for the encoded list is fine here.
            var encoded = [UInt8](repeating: 0, count: fids.count * 4)
            for (index, fid) in fids.enumerated() {
                withUnsafeBytes(of: fid.littleEndian) { bytes in
                    for byte in 0..<4 { encoded[index * 4 + byte] = bytes[byte] }
                }
            }
            encoded.withUnsafeBytes { bytes in
                var w = WireWriter(region)
                length = (try? Response.localrevoke(fids: FidList(encoded: ByteView(bytes))).encode(tag: tag, into: &w)) ?? 0
            }
        }
        return length
    }
}

extension FileServer {
    /// Revokes localio grants (docs/LOCALIO.md): every grant of every session when `fids` is
    /// nil (export reload, shutdown, an administrator's SIGUSR2 in ninepd), else the grants of
    /// these fids in every session (for tests and embedders). Clients that keep a Tlocalrevoke
    /// outstanding are told at once and go back to 9P reads and writes for those files; the
    /// others learn with their next one. Returns how many grants were revoked.
    @discardableResult
    public func revokeLocalGrants(fids: [UInt32]? = nil) -> Int {
        var count = 0
        for connection in activeConnections() { count += connection.revokeLocalGrants(fids: fids) }
        return count
    }
}
