import Glibc
import NinePWire

/// The Tlocalrevoke a localio session keeps outstanding (docs/LOCALIO.md): when ninepd revokes
/// grants it answers with their fids, the files holding them go back to Tread and Twrite, and
/// the next Tlocalrevoke goes out. It ends with the connection, or when the server does not
/// serve Tlocalrevoke (EOPNOTSUPP from an older ninepd: grants then end only with their file).
///
/// It starts with the session's first grant and then holds one request slot for the session's
/// life, so it runs only when the connection has
/// at least two (`maxInFlight` >= 2): with one slot it would leave no room for any other call.
enum RevocationWatch {
    /// On the client's own executor thread, not Swift's global pool, whose few threads (two
    /// here) other work in the process may hold: the poll must go out whatever else runs.
    static func start(_ connection: ClientConnection, on executor: ClientExecutor) {
        guard connection.localIO, connection.requestSlots >= 2, connection.grants.beginWatching() else { return }
        Task.detached(executorPreference: executor) {
            // The task holds the connection only while a poll is out; the connection's
            // shutdown fails that call and the loop ends.
            let grants = connection.grants
            while !connection.isClosed {
                do {
                    // The reader thread takes the revoked grants back as the reply arrives
                    // (`GrantedDescriptors.frameRead`); this task only sends the next poll.
                    try await connection.call(.read, timeout: nil) { (w: inout WireWriter, tag) throws(WireError) in
                        grants.polling(tag: tag)
                        try Request.localrevoke.encode(tag: tag, into: &w)
                    } decode: { response throws(NinePError) in
                        grants.polling(tag: nil)
                        guard case .localrevoke = response else { throw .protocolViolation(.read) }
                    }
                } catch {
                    grants.polling(tag: nil)
                    return  // closed, or the server does not serve it
                }
            }
        }
    }
}
