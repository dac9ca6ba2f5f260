import NinePWire
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

    /// `capacity`: the node table's (entries go with their nodes), reserved so that recording
    /// an absence never grows the table.
    init(lifetime: Duration, capacity: Int = 0) {
        self.lifetime = lifetime
        absentUntil.withLock { $0.reserveCapacity(capacity) }
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
        absentUntil.withLock { $0[nodeID] = until }
    }

    func forget(_ nodeID: UInt64) {
        _ = absentUntil.withLock { $0.removeValue(forKey: nodeID) }
    }
}
