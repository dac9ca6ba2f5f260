import Glibc
import NinePWire

/// POSIX record locks in the wire's terms, for front ends that pass a caller's lock through (the
/// FUSE mount): the lock type as Tlock numbers it (LockType: read 0, write 1, unlock 2, as
/// F_RDLCK, F_WRLCK, F_UNLCK), `length` 0 meaning to the end of the file, and the caller's pid.
extension RemoteFile {
    /// Tlock on this open file. With `wait`, retries while the server answers BLOCKED (servers
    /// never park a request on a lock; the kernel client retries the same way) until it is
    /// granted or the task is cancelled. Returns false when held elsewhere (no `wait`).
    public func lock(type: UInt8, start: UInt64, length: UInt64, processID: UInt32, wait: Bool) async throws -> Bool {
        var pause = Duration.milliseconds(5)
        while true {
            let status = try await lockOnce(type: type, start: start, length: length, processID: processID)
            switch status {
            case LockStatus.success:
                if type != LockType.unlock { noteLockHeld() }
                return true
            case LockStatus.blocked, LockStatus.grace:
                guard wait else { return false }
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(100))
            default:
                throw NinePError(.server, errno: ENOLCK, operation: .lock, path: path)
            }
        }
    }

    private func lockOnce(type: UInt8, start: UInt64, length: UInt64, processID: UInt32) async throws -> UInt8 {
        let fid = self.fid
        let fields = LockFields(type: type, flags: 0, start: start, length: length, processID: processID, clientID: ByteView(static: "ninep"))
        return try await call(.lock) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.lock(fid: fid, fields).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .lock(status) = response else { throw .protocolViolation(.lock) }
            return status
        }
    }

    /// Tgetlock: the first lock that would conflict with the one described, or type unlock (2)
    /// when none would.
    public func conflictingLock(type: UInt8, start: UInt64, length: UInt64, processID: UInt32) async throws -> (type: UInt8, start: UInt64, length: UInt64, processID: UInt32) {
        let fid = self.fid
        let fields = GetlockFields(type: type, start: start, length: length, processID: processID, clientID: ByteView(static: "ninep"))
        return try await call(.getlock) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.getlock(fid: fid, fields).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .getlock(held) = response else { throw .protocolViolation(.getlock) }
            return (held.type, held.start, held.length, held.processID)
        }
    }
}
