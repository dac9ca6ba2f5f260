import Glibc
import NinePClient
import NinePWire

/// GETLK, SETLK, SETLKW onto Tgetlock and Tlock, each through the lock owner's fid of the node
/// (`LockOwners`): locks are the process's, as POSIX has them, not the open file's. FLUSH (the
/// owner closing a descriptor of the file) clunks that fid, which drops all its locks there.
/// FUSE describes a range by its last byte (OFFSET_MAX: to the end), 9P by its length (0: to
/// the end).
extension NinePFileSystem {
    static let offsetMax = UInt64(Int64.max)

    static func length(of lock: FuseFileLock) throws(FuseFailure) -> UInt64 {
        guard lock.end >= lock.start else { throw FuseFailure(EINVAL) }
        return lock.end >= offsetMax ? 0 : lock.end - lock.start + 1
    }

    /// GETLK: through the owner's fid, so its own locks do not show as conflicts; an owner with
    /// none asks through the handle's fid (no lock is ever held through a handle's fid).
    func getlk(_ header: FuseInHeader, _ l: FuseLockIn) async throws -> FuseLockOut {
        let file = try lockOwners.file(node: header.nodeID, owner: l.owner) ?? handle(l.fh)
        let held = try await file.conflictingLock(type: UInt8(truncatingIfNeeded: l.lock.type), start: l.lock.start, length: Self.length(of: l.lock), processID: l.lock.pid)
        guard held.type != LockType.unlock else {
            return FuseLockOut(lock: FuseFileLock(start: 0, end: 0, type: UInt32(F_UNLCK), pid: 0))
        }
        let end = held.length == 0 ? Self.offsetMax : held.start &+ held.length &- 1
        return FuseLockOut(lock: FuseFileLock(start: held.start, end: min(end, Self.offsetMax), type: UInt32(held.type), pid: held.processID))
    }

    /// SETLK answers EAGAIN when the lock is held elsewhere; SETLKW waits (retrying Tlock) until
    /// it is granted or INTERRUPT cancels the wait (EINTR).
    func setlk(_ header: FuseInHeader, _ l: FuseLockIn, wait: Bool) async throws {
        // flock(2) locks were not negotiated (FUSE_FLOCK_LOCKS): they stay local.
        guard l.lkFlags & 1 == 0 else { throw FuseFailure(ENOSYS) }
        let type = UInt8(truncatingIfNeeded: l.lock.type)
        let length = try Self.length(of: l.lock)
        let file: RemoteFile
        if let known = lockOwners.file(node: header.nodeID, owner: l.owner) {
            file = known
        } else {
            // An owner with no fid here holds no lock here: nothing to unlock.
            if type == LockType.unlock { return }
            file = try await newLockFile(header, l)
        }
        let granted = try await file.lock(type: type, start: l.lock.start, length: length, processID: l.lock.pid, wait: wait)
        if !granted { throw FuseFailure(EAGAIN) }
    }

    /// Opens the owner's lock fid of the node: a clone of the node's fid, opened for reading and
    /// writing when the server allows (one fid serves all the owner's descriptors of the file,
    /// and a write lock needs it open for writing), else for reading, else for writing.
    private func newLockFile(_ header: FuseInHeader, _ l: FuseLockIn) async throws -> RemoteFile {
        _ = try handle(l.fh)
        let file = try await node(header.nodeID, for: header).clone()
        var opened = false
        var lastError: any Error = FuseFailure(EBADF)
        for mode in [O_RDWR, O_RDONLY, O_WRONLY] where !opened {
            do {
                try await file.open(flags: UInt32(mode))
                opened = true
            } catch {
                lastError = error
            }
        }
        guard opened else {
            await file.close()
            throw lastError
        }
        switch lockOwners.insert(file, node: header.nodeID, owner: l.owner, handle: l.fh) {
        case .inserted:
            return file
        case let .existing(other):
            await file.close()
            return other
        case .full:
            await file.close()
            _ = tableFull(4, "the lock owner table is full (\(lockOwners.capacity) owners holding locks on a file): new owners' locks answer ENOLCK")
            throw FuseFailure(ENOLCK)
        }
    }

    /// FLUSH: the owner closed a descriptor of the node; POSIX drops all its locks on the file.
    func flushLocks(_ header: FuseInHeader, owner: UInt64) async {
        await lockOwners.remove(node: header.nodeID, owner: owner)?.close()
    }

    /// RELEASE of `fh`: lock fids still opened through it (FLUSH never came) go with it.
    func releaseLocks(_ fh: UInt64) async {
        while let file = lockOwners.removeOne(handle: fh) { await file.close() }
    }
}
