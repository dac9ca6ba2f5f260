/// Whose identity requests go to the server as.
///
/// Every FUSE request names the calling process's fsuid and fsgid. With `perUserAttach` (a
/// mount by root with allow_other) a caller other than `attachUID` gets an attach of its own
/// (n_uname = its uid), as the Linux client's access=user does, so the server checks
/// permissions and owns new files as that user; otherwise every request goes out as the one
/// attach the mount made (`attachUID`), which is right when only that user can reach the mount.
public struct IdentityOptions: Sendable {
    public var perUserAttach = false
    /// The local uid of the mount's own attach: its callers use the node table's fids.
    public var attachUID: UInt32 = 0
    /// Per-user fids kept at most (beyond the per-user roots): the least recently used are
    /// clunked to make room and walked again when next needed.
    public var userFidCapacity = 4096
    /// Server ids to local ids and back (empty: the same numbers on both sides).
    public var uidMap = IdMap()
    public var gidMap = IdMap()

    public init() {}
}
