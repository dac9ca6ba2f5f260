import CNinePShims
import Glibc
import NinePWire
import Synchronization

/// One connection's localio state (docs/LOCALIO.md): whether its session speaks the extension,
/// the nonce of its sealed memfd, whether the peer has proven it received that memfd, and the
/// peer's credentials as the kernel recorded them when it connected (SO_PEERCRED).
///
/// A new Tversion starts over: a new nonce, nothing proven. Every check reads this state under
/// its mutex and allocates nothing.
final class LocalIOSession: Sendable {
    struct PeerCredentials: Equatable {
        var pid: Int32
        var uid: UInt32
        var gid: UInt32
    }

    /// The nonce: 32 bytes as four words, so the state is plain values (Sendable, no allocation).
    typealias Nonce = (UInt64, UInt64, UInt64, UInt64)

    private struct State {
        /// SO_PEERCRED of a unix socket; nil on TCP (localio is never negotiated there).
        var peer: PeerCredentials?
        /// The session negotiated `NineP.versionLocalIO`.
        var negotiated = false
        var proven = false
        var nonce: Nonce = (0, 0, 0, 0)
        /// Fids holding a grant the client has not been told to drop (clunk forgets them).
        var granted: Set<UInt32> = []
        /// Revoked fids waiting for the next Tlocalrevoke, in revocation order.
        var revoked: [UInt32] = []
    }

    private let state = Mutex(State())

    /// A client was assigned to the connection: its credentials, taken once, now (a peer that
    /// later passes its socket to another process does not change them; docs/LOCALIO.md).
    func begin(socket: Int32) {
        var peer: PeerCredentials? = nil
        if ninep_is_unix_socket(socket) == 1 {
            var pid: Int32 = 0
            var uid: UInt32 = 0
            var gid: UInt32 = 0
            if ninep_peer_credentials(socket, &pid, &uid, &gid) == 0 { peer = PeerCredentials(pid: pid, uid: uid, gid: gid) }
        }
        state.withLock { $0 = State(peer: peer) }
    }

    /// The session's credentials (for tests and logs).
    var peer: PeerCredentials? { state.withLock { $0.peer } }

    /// Tversion: starts the session over. When the client asked for the extension and the
    /// connection is a unix socket, a fresh nonce goes into a sealed memfd whose descriptor the
    /// caller attaches to Rversion (and closes once sent); -1 means plain 9P2000.L.
    func negotiate(wantsExtension: Bool) -> Int32 {
        var fresh: Nonce = (0, 0, 0, 0)
        let usable = state.withLock { $0.peer != nil }
        guard wantsExtension, usable,
              withUnsafeMutableBytes(of: &fresh, { ninep_random_bytes($0.baseAddress!, $0.count) }) == 0
        else {
            state.withLock { $0 = State(peer: $0.peer) }
            return -1
        }
        let memfd = withUnsafeBytes(of: &fresh) { ninep_sealed_memfd($0.baseAddress!, $0.count) }
        state.withLock { state in
            state.negotiated = memfd >= 0
            state.proven = false
            state.nonce = fresh
            // Tversion clunked every fid: the old session's grants name nothing any more.
            state.granted.removeAll()
            state.revoked.removeAll()
        }
        return memfd
    }

    /// Tlocalproof: true when `nonce` is this session's (compared in constant time). A wrong
    /// nonce also withdraws an earlier proof.
    func prove(_ nonce: ByteView) throws(ServerErrno) {
        try state.withLock { (state: inout State) throws(ServerErrno) in
            guard state.negotiated else { throw ServerErrno.notSupported }
            var expected = state.nonce
            let equal = withUnsafeBytes(of: &expected) { expected in
                nonce.count == expected.count && ninep_equal_constant_time(expected.baseAddress!, nonce.base.baseAddress!, expected.count) == 1
            }
            state.proven = equal
            if !equal { throw ServerErrno(LinuxErrno.EACCES) }
        }
    }

    /// The first checks of Tlocalgrant, before the fid is looked at: the extension was
    /// negotiated (else EOPNOTSUPP, as for any unknown message) and locality proven (EACCES).
    func requireProven() throws(ServerErrno) {
        let (negotiated, proven) = state.withLock { ($0.negotiated, $0.proven) }
        guard negotiated else { throw ServerErrno.notSupported }
        guard proven else { throw ServerErrno(LinuxErrno.EACCES) }
    }

    /// True when the peer's SO_PEERCRED uid is `uid` (the fid's identity).
    func peerIs(uid: UInt32) -> Bool {
        state.withLock { $0.peer?.uid == uid }
    }

    // MARK: Revocation

    /// A grant was sent for `fid`.
    func noteGranted(fid: UInt32) {
        state.withLock { _ = $0.granted.insert(fid) }
    }

    /// `fid` was clunked (or removed): its grant, if any, needs no revocation any more.
    func forget(fid: UInt32) {
        state.withLock { state in
            guard !state.granted.isEmpty else { return }
            state.granted.remove(fid)
        }
    }

    /// Revokes the grants of `fids` (every grant when nil): they wait for the next
    /// Tlocalrevoke. Returns how many grants were revoked.
    func revoke(fids: [UInt32]?) -> Int {
        state.withLock { state in
            guard !state.granted.isEmpty else { return 0 }
            let before = state.revoked.count
            if let fids {
                for fid in fids where state.granted.remove(fid) != nil { state.revoked.append(fid) }
            } else {
                state.revoked.append(contentsOf: state.granted.sorted())
                state.granted.removeAll()
            }
            return state.revoked.count - before
        }
    }

    var hasRevoked: Bool { state.withLock { !$0.revoked.isEmpty } }

    /// Takes at most `limit` revoked fids, oldest first, for an Rlocalrevoke.
    func takeRevoked(limit: Int, into body: (ArraySlice<UInt32>) -> Void) {
        state.withLock { state in
            let count = min(limit, state.revoked.count)
            body(state.revoked[0..<count])
            state.revoked.removeFirst(count)
        }
    }

    /// The session ended: nothing holds over to the next client of the slot.
    func end() {
        state.withLock { $0 = State() }
    }
}
