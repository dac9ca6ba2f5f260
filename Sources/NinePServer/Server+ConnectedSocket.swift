import Glibc
import NinePTransport

/// Why `FileServer.serve(connectedSocket:peer:)` did not take a socket.
public struct RefusedConnection: Error, CustomStringConvertible {
    public let description: String
}

extension FileServer {
    /// Serves a socket that is already connected to a client (one end of a `socketpair`, a
    /// socket inherited from a supervisor), as if a listener had accepted it: it takes a slot of
    /// the connection table (or a connection beyond it), counts against --max-connections, and
    /// is logged, closed on shutdown and counted in `connectionCount` like any other.
    ///
    /// The server owns `fd` from the call on, refused or not (a refused socket is closed). It
    /// must be a blocking stream socket. `peer` names the client in log lines and in
    /// `connectionShares()`.
    public func serve(connectedSocket fd: Int32, peer: String) throws(RefusedConnection) {
        let address = PeerAddress(storage: sockaddr_storage(), listenAddress: .unix(path: peer))
        guard admit(fd: fd, peer: address) else {
            Glibc.close(fd)
            throw RefusedConnection(description: "connection from \(peer) refused: \(isStopping ? "the server is shutting down" : "limit of \(configuration.maxConnections) connections reached (--max-connections)")")
        }
    }
}
