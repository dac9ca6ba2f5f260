import Glibc
import NinePWire

/// localio for callers that open with raw flags (`open(flags:)`, `create(_:flags:mode:gid:)`):
/// `ninep mount`. Those opens ask for no grant by themselves; the mount asks when it wants one
/// (docs/LOCALIO.md, "ninep mount"), and either hands the descriptor to the kernel (FUSE
/// passthrough) or keeps it, so that this file's `read` and `write` become pread and pwrite.
extension RemoteFile {
    /// Sends Tlocalgrant for this opened fid; true when a grant is now held. `openFlags` are
    /// the Linux flags the fid was opened with: an O_DIRECT open asks for none (as
    /// `open(_:options:)` with `.direct`). A refusal (another identity, not a regular file, a
    /// server without localio, a revoked file) answers false and leaves the file on 9P.
    /// `created`: the qid `create(_:flags:mode:gid:)` returned (this handle's own `qid` is
    /// still the directory's it was cloned from).
    public func requestLocalGrant(openFlags: UInt32, created: Qid? = nil) async -> Bool {
        guard state.withLock({ $0.local == nil }) else { return true }
        // Not direct: the mount hands the descriptor to the kernel or reads it in its workers
        // with the kernel's buffers, which need not be aligned.
        guard openFlags & OpenFlags.direct == 0, let grant = await requestGrant(allowDirect: false, opened: created) else { return false }
        install(grant)
        return true
    }

    /// Runs `body` with the granted descriptor and whether it may read and write; nil when
    /// the file holds no grant. The descriptor is borrowed: it stays open only while `body`
    /// runs (a concurrent close waits for it), so `body` must not keep it or block. The kernel
    /// taking its own reference (FUSE_DEV_IOC_BACKING_OPEN, dup) is what it is for.
    public func withLocalDescriptor<R>(_ body: (_ fd: Int32, _ readable: Bool, _ writable: Bool) -> R) -> R? {
        state.withLock { state in
            guard let local = state.local else { return nil }
            return body(local.fd, local.canRead, local.canWrite)
        }
    }

    /// Closes the grant: this file's reads and writes go through 9P again.
    public func releaseLocalGrant() {
        dropLocalGrant()
    }
}

extension NinePClient {
    /// Whether the current connection negotiated localio and proved it is on this host: only
    /// then can a grant be asked for.
    public var isProvenLocal: Bool { connection.localIO }
}
