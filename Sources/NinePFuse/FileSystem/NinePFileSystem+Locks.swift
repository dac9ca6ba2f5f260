import Glibc
import NinePClient
import NinePWire

/// GETLK, SETLK, SETLKW onto Tgetlock and Tlock of the handle's fid. FUSE describes a range by
/// its last byte (OFFSET_MAX: to the end), 9P by its length (0: to the end).
///
/// Owners: ninepd holds locks per fid (open file description locks), and each open here is a
/// fid of its own, so two processes conflict as on a local file system; one process locking one
/// file through two descriptors is two owners here, where POSIX sees one.
extension NinePFileSystem {
    static let offsetMax = UInt64(Int64.max)

    static func length(of lock: FuseFileLock) throws(FuseFailure) -> UInt64 {
        guard lock.end >= lock.start else { throw FuseFailure(EINVAL) }
        return lock.end >= offsetMax ? 0 : lock.end - lock.start + 1
    }

    func getlk(_ l: FuseLockIn) async throws -> FuseLockOut {
        let file = try handle(l.fh)
        let held = try await file.conflictingLock(type: UInt8(truncatingIfNeeded: l.lock.type), start: l.lock.start, length: Self.length(of: l.lock), processID: l.lock.pid)
        guard held.type != LockType.unlock else {
            return FuseLockOut(lock: FuseFileLock(start: 0, end: 0, type: UInt32(F_UNLCK), pid: 0))
        }
        let end = held.length == 0 ? Self.offsetMax : held.start &+ held.length &- 1
        return FuseLockOut(lock: FuseFileLock(start: held.start, end: min(end, Self.offsetMax), type: UInt32(held.type), pid: held.processID))
    }

    /// SETLK answers EAGAIN when the lock is held elsewhere; SETLKW waits (retrying Tlock) until
    /// it is granted or INTERRUPT cancels the wait (EINTR).
    func setlk(_ l: FuseLockIn, wait: Bool) async throws {
        // flock(2) locks were not negotiated (FUSE_FLOCK_LOCKS): they stay local.
        guard l.lkFlags & 1 == 0 else { throw FuseFailure(ENOSYS) }
        let file = try handle(l.fh)
        let granted = try await file.lock(type: UInt8(truncatingIfNeeded: l.lock.type), start: l.lock.start, length: Self.length(of: l.lock), processID: l.lock.pid, wait: wait)
        if !granted { throw FuseFailure(EAGAIN) }
    }
}
