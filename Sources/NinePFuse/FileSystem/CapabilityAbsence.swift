import NinePWire
import NinePMemory
import Synchronization

/// Nodes known, for a short while, to have no `security.capability` attribute.
///
/// Before every write(2) the kernel asks for that attribute (to drop it when an unprivileged
/// process writes), which would cost one more 9P round trip per write system call. Its absence
/// is remembered per node for the attribute timeout, as attributes are; a SETXATTR or
/// REMOVEXATTR through this mount forgets it at once. A server that gained the attribute
/// meanwhile still strips it itself when the write reaches it (ninepd writes as the user).
final class CapabilityAbsence: Sendable {
    static let name: StaticString = "security.capability"

    private let absentUntil = Mutex<[UInt64: ContinuousClock.Instant]>([:])
    private let lifetime: Duration
    /// At most this many nodes remembered; a full table records no more (their writes ask the
    /// server, as without the cache) until entries expire or their nodes go.
    let capacity: Int

    /// The table's room is reserved and made resident at start, so that recording an absence
    /// never grows it nor faults a page in. It is a cache of the nodes being written, not of
    /// every node: 4,096 by default, not the node table's 65,536 (3 MiB less at start).
    init(lifetime: Duration, capacity: Int = 4096) {
        self.lifetime = lifetime
        self.capacity = max(1, capacity)
        absentUntil.withLock { $0.reserveResident(self.capacity, value: .now) }
    }

    static func concerns(_ attribute: ByteView) -> Bool { attribute.equals(name) }

    func isKnownAbsent(_ nodeID: UInt64) -> Bool {
        let now = ContinuousClock.now
        return absentUntil.withLock { table in
            guard let until = table[nodeID] else { return false }
            if until > now { return true }
            table[nodeID] = nil
            return false
        }
    }

    func recordAbsent(_ nodeID: UInt64) {
        guard lifetime > .zero else { return }
        let until = ContinuousClock.now + lifetime
        absentUntil.withLock { table in
            // Full: not recorded (a sweep would allocate); entries leave with their nodes and
            // when found expired.
            if table.count >= capacity && table[nodeID] == nil { return }
            table[nodeID] = until
        }
    }

    func forget(_ nodeID: UInt64) {
        _ = absentUntil.withLock { $0.removeValue(forKey: nodeID) }
    }
}
