import Glibc
import Synchronization

/// A descriptor ninepd granted for an open file (docs/LOCALIO.md), owned by this object: it is
/// closed when the last holder lets go, so a read in progress on one thread is never left with
/// a descriptor number that a revocation on another thread closed and the process reused.
///
/// For `ninep mount`'s passthrough: `descriptor` is borrowed for as long as the caller holds
/// the grant; `isRevoked` (and the handler) say when the server asked for it back, after which
/// the caller should stop using it and go through 9P.
public final class LocalGrant: Sendable {
    /// The granted descriptor (open while this object lives).
    public let descriptor: Int32
    /// Its 9P2000.L open flags as the kernel reports them (access mode, and
    /// `OpenFlags.direct` when it is O_DIRECT).
    public let flags: UInt32
    /// For an O_DIRECT grant: the same file reopened without O_DIRECT, for the unaligned
    /// head and tail of a request (`DirectSplit`); -1 otherwise.
    let bufferedDescriptor: Int32
    private let revocation = Mutex<(revoked: Bool, handler: (@Sendable () -> Void)?)>((false, nil))

    init(descriptor: Int32, flags: UInt32, bufferedDescriptor: Int32 = -1) {
        self.descriptor = descriptor
        self.flags = flags
        self.bufferedDescriptor = bufferedDescriptor
    }

    deinit {
        close(descriptor)
        if bufferedDescriptor >= 0 { close(bufferedDescriptor) }
    }

    /// The grant is O_DIRECT.
    var isDirect: Bool { flags & 0o40000 != 0 }

    /// True once the server revoked the grant (an Rlocalrevoke named its fid).
    public var isRevoked: Bool { revocation.withLock { $0.revoked } }

    /// Called once when the server revokes the grant (at once if it already has), on the
    /// client's revocation task: keep it short.
    public func onRevoke(_ handler: @escaping @Sendable () -> Void) {
        let already = revocation.withLock { state in
            if !state.revoked { state.handler = handler }
            return state.revoked
        }
        if already { handler() }
    }

    func markRevoked() {
        let handler = revocation.withLock { state -> (@Sendable () -> Void)? in
            guard !state.revoked else { return nil }
            state.revoked = true
            defer { state.handler = nil }
            return state.handler
        }
        handler?()
    }
}
