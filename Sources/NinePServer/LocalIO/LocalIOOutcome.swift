import Glibc
import Metrics

extension RequestStatistics {
    /// How a localio proof or grant ended (docs/LOCALIO.md), counted per connection and
    /// published as `ninep_localio_proofs_total{outcome}` and `ninep_localio_grants_total{outcome}`.
    enum LocalIOOutcome: Int, CaseIterable {
        case proofAccepted
        case proofRefused
        case granted
        /// The session did not negotiate localio or has not proven locality (EOPNOTSUPP, EACCES).
        case refusedUnproven
        /// The peer's SO_PEERCRED uid is not the fid's identity (EPERM).
        case refusedIdentity
        /// The fid is unknown or not open, or opened for something other than I/O (EBADF).
        case refusedNotOpen
        /// Not a regular file (EINVAL).
        case refusedNotRegular
        /// A read-only export on a file system mounted read-write (EROFS).
        case refusedReadOnly
        /// The reopen itself failed (its errno went to the client).
        case failed
        /// A grant revoked (export reload, shutdown, `revokeLocalGrants`): its fid went to the
        /// client in an Rlocalrevoke, or will with the next Tlocalrevoke.
        case revoked

        /// The outcome a refusal's errno stands for.
        static func refused(errno: UInt32) -> LocalIOOutcome {
            switch Int32(errno) {
            case EOPNOTSUPP, EACCES: .refusedUnproven
            case EPERM: .refusedIdentity
            case EBADF: .refusedNotOpen
            case EINVAL: .refusedNotRegular
            case EROFS: .refusedReadOnly
            default: .failed
            }
        }

        var isProof: Bool { self == .proofAccepted || self == .proofRefused }

        var label: String {
            switch self {
            case .proofAccepted: "accepted"
            case .proofRefused: "refused"
            case .granted: "granted"
            case .refusedUnproven: "unproven"
            case .refusedIdentity: "identity"
            case .refusedNotOpen: "not_open"
            case .refusedNotRegular: "not_regular"
            case .refusedReadOnly: "read_only"
            case .failed: "failed"
            case .revoked: "revoked"
            }
        }

        func counter(_ factory: any MetricsFactory) -> Counter {
            let name = isProof ? "ninep_localio_proofs_total" : self == .revoked ? "ninep_localio_revocations_total" : "ninep_localio_grants_total"
            return Counter(label: name, dimensions: [("outcome", label)], factory: factory)
        }
    }
}
