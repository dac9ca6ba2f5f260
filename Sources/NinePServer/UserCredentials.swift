import NinePMemory
import CNinePShims
import Glibc
import NinePWire
import Synchronization

/// The identity a request runs as: uid, primary gid and supplementary groups.
struct UserCredentials: Sendable {
    var uid: UInt32
    var gid: UInt32
    var groups: [gid_t]

    /// What access-client exports run as (permission checks are the client's).
    static let root = UserCredentials(uid: 0, gid: 0, groups: [])

    /// Looks a user up in the host's user database. A uid without an entry runs with gid = uid
    /// and no supplementary groups (clients such as VMs often have users the host lacks).
    static func lookup(uid: UInt32) -> UserCredentials {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var scratch = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(uid, &pwd, &scratch, scratch.count, &result) == 0, result != nil else {
            return UserCredentials(uid: uid, gid: uid, groups: [])
        }
        return UserCredentials(uid: uid, gid: pwd.pw_gid, groups: groupList(name: pwd.pw_name, gid: pwd.pw_gid))
    }

    /// Looks a user up by name; nil when the host does not know it.
    static func lookup(name: String) -> UserCredentials? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var scratch = [CChar](repeating: 0, count: 16384)
        guard getpwnam_r(name, &pwd, &scratch, scratch.count, &result) == 0, result != nil else { return nil }
        return UserCredentials(uid: pwd.pw_uid, gid: pwd.pw_gid, groups: groupList(name: pwd.pw_name, gid: pwd.pw_gid))
    }

    private static func groupList(name: UnsafePointer<CChar>, gid: gid_t) -> [gid_t] {
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, gid, &groups, &count)
        }
        return Array(groups.prefix(Int(max(count, 0))))
    }
}

/// Credentials by uid, filled at Tattach (where allocation is allowed) and read on the request
/// path without allocating.
final class UserDirectory: Sendable {
    private let users = AdaptiveMutex<[UInt32: UserCredentials]>([:])

    func register(_ credentials: UserCredentials) {
        users.withLock { $0[credentials.uid] = credentials }
    }

    func credentials(uid: UInt32) -> UserCredentials? {
        users.withLock { $0[uid] }
    }

    private let switchFailureSeen = Atomic<Bool>(false)

    /// True only the first time: a credential switch that fails will fail again, so it is
    /// logged once.
    func firstSwitchFailure() -> Bool {
        !switchFailureSeen.exchange(true, ordering: .relaxed)
    }
}

/// A credential change that did not take effect: which step, and its errno (EPERM when the
/// call reports nothing and reading the id back showed the old one).
struct CredentialSwitchFailure: Error {
    let step: StaticString
    let errno: Int32
}

/// The credentials a worker thread currently runs with. Changing fsuid/fsgid/groups is
/// per-thread on Linux (raw syscalls), so each worker keeps its own and switches only when the
/// next request's user differs.
struct ThreadIdentity {
    private(set) var uid: UInt32 = UInt32.max
    private(set) var gid: UInt32 = UInt32.max
    /// Supplementary groups of the current user: the gids a creation may name.
    private(set) var groups: [gid_t] = []
    /// True while a creation runs with another fsgid.
    private var creationGroupActive = false
    let enabled: Bool

    init(enabled: Bool) { self.enabled = enabled }

    /// Becomes `credentials` for file access; a no-op when not running as root. Every step is
    /// checked, and until all have taken effect the thread's identity counts as unknown: the
    /// request fails instead of running as someone else, and the next one switches from
    /// scratch.
    mutating func become(_ credentials: UserCredentials) throws(CredentialSwitchFailure) {
        guard enabled else { return }
        if credentials.uid == uid && credentials.gid == gid { return }
        let wasRoot = uid == 0
        forget()
        // Capabilities back first (setgroups needs CAP_SETGID), groups, fsgid, then fsuid;
        // then, for anyone but root, no effective capability at all: fsuid alone clears only
        // the file-system ones, and CAP_SYS_ADMIN would still allow trusted.* xattrs and more.
        if !wasRoot { try Self.call("capset (raise)") { ninep_thread_effective_caps(1) } }
        try Self.switchFsuid(to: 0)
        try Self.call("setgroups") {
            credentials.groups.withUnsafeBufferPointer { ninep_thread_setgroups($0.count, $0.baseAddress) }
        }
        try Self.switchFsgid(to: credentials.gid)
        try Self.switchFsuid(to: credentials.uid)
        if credentials.uid != 0 { try Self.call("capset (drop)") { ninep_thread_effective_caps(0) } }
        uid = credentials.uid
        gid = credentials.gid
        groups = credentials.groups
    }

    /// --access client: requests run as root, but a write or truncation for a user other than
    /// root runs without CAP_FSETID, so that it clears setuid and setgid as that user's would on
    /// a local file system; a chmod, chown or new file the client allowed runs with it (without
    /// it the kernel would drop setgid for a group the server thread is not in). Sticky: a
    /// system call only when the need changes.
    private var fsetidDropped = false
    mutating func clearSetIDOnWrite(forUid uid: UInt32) {
        setFsetid(dropped: uid != 0)
    }

    mutating func keepSetIDBits() {
        setFsetid(dropped: false)
    }

    private mutating func setFsetid(dropped: Bool) {
        guard dropped != fsetidDropped else { return }
        if ninep_thread_keep_fsetid(dropped ? 0 : 1) == 0 { fsetidDropped = dropped }
    }

    /// Temporarily uses another fsgid: Tlcreate/Tmkdir/Tmknod/Tsymlink carry the creating
    /// process's fsgid, which its kernel has already decided (its own groups, or the group of a
    /// setgid directory). It is trusted as the attaching uid is: the server cannot know the
    /// client's groups, and refusing a group it does not list made creates fail (EPERM) that
    /// succeed locally. A squashed session never gets here with another gid (see
    /// `Worker.creationGroup`).
    mutating func setCreationGroup(_ gid: UInt32) throws(CredentialSwitchFailure) {
        guard enabled, gid != self.gid else { return }
        try switchCreationFsgid(to: gid)
        creationGroupActive = true
    }

    /// The mode a new non-directory is created with in group `gid`: without S_ISGID when the
    /// user is not root and the server does not list that group among the user's, as Linux
    /// strips it for a creator outside the group. The group is trusted (see
    /// `setCreationGroup`), but a setgid file of any group it names would give a user limited by
    /// --allowed-users that group's rights on the server.
    func creationMode(_ mode: UInt32, group gid: UInt32) -> UInt32 {
        guard enabled, uid != 0, gid != self.gid, !groups.contains(gid) else { return mode }
        return mode & ~UInt32(Glibc.S_ISGID)
    }

    mutating func restoreCreationGroup() throws(CredentialSwitchFailure) {
        guard enabled, creationGroupActive else { return }
        creationGroupActive = false
        try switchCreationFsgid(to: gid)
    }

    /// setfsgid for a creation and back: a group other than the user's needs CAP_SETGID for a
    /// moment. A failure leaves the identity unknown (see `forget`).
    private mutating func switchCreationFsgid(to gid: UInt32) throws(CredentialSwitchFailure) {
        do throws(CredentialSwitchFailure) {
            if uid != 0 { try Self.call("capset (raise)") { ninep_thread_effective_caps(1) } }
            try Self.switchFsgid(to: gid)
            if uid != 0 { try Self.call("capset (drop)") { ninep_thread_effective_caps(0) } }
        } catch {
            forget()
            throw error
        }
    }

    /// Runs `body` with every permitted capability effective, then returns to the current
    /// user's (none, for a user other than root). If they cannot be dropped again, the
    /// identity is unknown and the request's own switch (which follows) starts over.
    mutating func withFullCapabilities<R>(_ body: () -> R) -> R {
        guard enabled, uid != 0 else { return body() }
        _ = ninep_thread_effective_caps(1)  // if refused, `body` only lacks the privilege
        defer { if ninep_thread_effective_caps(0) != 0 { forget() } }
        return body()
    }

    /// Marks the thread's identity unknown, so that the next `become` does every step.
    private mutating func forget() {
        uid = UInt32.max
        gid = UInt32.max
        groups = []
        creationGroupActive = false
    }

    /// A call that returns 0, or -1 with errno (read at once, before anything else runs).
    private static func call(_ step: StaticString, _ body: () -> Int32) throws(CredentialSwitchFailure) {
        if body() != 0 { throw CredentialSwitchFailure(step: step, errno: errno) }
    }

    /// setfsuid/setfsgid return the previous id whether or not they changed it: the id is
    /// read back (the -1 form changes nothing) to see that the switch took effect.
    private static func switchFsuid(to id: UInt32) throws(CredentialSwitchFailure) {
        _ = ninep_setfsuid(id)
        if ninep_getfsuid() != id { throw CredentialSwitchFailure(step: "setfsuid", errno: EPERM) }
    }

    private static func switchFsgid(to id: UInt32) throws(CredentialSwitchFailure) {
        _ = ninep_setfsgid(id)
        if ninep_getfsgid() != id { throw CredentialSwitchFailure(step: "setfsgid", errno: EPERM) }
    }

    /// Back to root's file identity (e.g. before a worker serves server-internal work).
    mutating func reset() {
        guard enabled, uid != 0 || gid != 0 else { return }
        _ = ninep_thread_effective_caps(1)
        _ = ninep_setfsuid(0)
        _ = ninep_setfsgid(0)
        _ = ninep_thread_setgroups(0, nil)
        uid = 0
        gid = 0
        groups = []
    }
}
