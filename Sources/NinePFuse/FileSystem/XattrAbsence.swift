import NinePMemory
import NinePWire
import Synchronization

/// Nodes known, for a short while, to lack the extended attributes the kernel and common tools
/// ask of nearly every file, so that asking again costs no 9P round trip.
///
/// - `security.capability`: the kernel asks before every write(2) (to drop it when an
///   unprivileged process writes).
/// - `security.selinux`, `system.posix_acl_access` and, for directories,
///   `system.posix_acl_default`: `ls -l` asks for each entry (its security context and whether
///   it has an ACL): two or three FUSE GETXATTRs per file that the kernel does not cache.
///
/// An absence (ENODATA from the server) is remembered per node for the attribute timeout, as
/// attributes are; a SETXATTR or REMOVEXATTR of any of these names through this mount forgets
/// the node at once. Another client's change is seen once the timeout passes, as with
/// attributes; a server that gained `security.capability` meanwhile still strips it itself when
/// the write reaches it (ninepd writes as the user). Absence is a property of the file, not of
/// who asks: every user's GETXATTR of these names is answered alike by the server.
final class XattrAbsence: Sendable {
    private struct Entry {
        /// When the entry stops counting: its first absence plus the lifetime (an absence
        /// recorded later shares it, so none is remembered longer than the lifetime).
        var until: ContinuousClock.Instant
        var mask: UInt8
    }

    private let entries = Mutex<[UInt64: Entry]>([:])
    private let lifetime: Duration
    /// At most this many nodes remembered; a full table records no more (those nodes ask the
    /// server, as without the cache) until entries expire or their nodes go.
    let capacity: Int

    /// The table's room is reserved and made resident at start, so that recording an absence
    /// never grows it nor faults a page in. It is a cache of the nodes in use, not of every
    /// node: 4,096 by default, not the node table's 49,152.
    init(lifetime: Duration, capacity: Int = 4096) {
        self.lifetime = lifetime
        self.capacity = max(1, capacity)
        entries.withLock { $0.reserveResident(self.capacity, value: Entry(until: .now, mask: 0)) }
    }

    static let capabilityBit: UInt8 = 1

    /// The bit of `name` in an entry's mask, or nil for a name not remembered. Plain
    /// comparisons: iterating an array of names allocates in a debug build (an unspecialized
    /// iterator), once per write(2).
    static func bit(for name: ByteView) -> UInt8? {
        if name.equals("security.capability") { return capabilityBit }
        if name.equals("security.selinux") { return 2 }
        if name.equals("system.posix_acl_access") { return 4 }
        if name.equals("system.posix_acl_default") { return 8 }
        return nil
    }

    func isKnownAbsent(_ nodeID: UInt64, bit: UInt8) -> Bool {
        let now = ContinuousClock.now
        return entries.withLock { table in
            guard let entry = table[nodeID] else { return false }
            if entry.until <= now {
                table[nodeID] = nil
                return false
            }
            return entry.mask & bit != 0
        }
    }

    func recordAbsent(_ nodeID: UInt64, bit: UInt8) {
        guard lifetime > .zero else { return }
        let now = ContinuousClock.now
        entries.withLock { table in
            if var entry = table[nodeID], entry.until > now {
                entry.mask |= bit
                table[nodeID] = entry
                return
            }
            // Full: not recorded (a sweep would allocate); entries leave with their nodes and
            // when found expired.
            if table.count >= capacity && table[nodeID] == nil { return }
            table[nodeID] = Entry(until: now + lifetime, mask: bit)
        }
    }

    func forget(_ nodeID: UInt64) {
        _ = entries.withLock { $0.removeValue(forKey: nodeID) }
    }
}
