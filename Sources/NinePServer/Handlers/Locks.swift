import CNinePShims
import Glibc
import NinePWire

extension Worker {
    /// Open-file-description locks: each fid's open descriptor is its own lock owner, so two
    /// clients (or two processes of one client, which use separate fids) conflict as POSIX
    /// locks between processes do. Released when the fid's descriptor closes.
    static func hostLockType(_ type: UInt8) -> Int16? {
        switch type {
        case LockType.read: Int16(F_RDLCK)
        case LockType.write: Int16(F_WRLCK)
        case LockType.unlock: Int16(F_UNLCK)
        default: nil
        }
    }

    static func flock(type: Int16, start: UInt64, length: UInt64) -> Glibc.flock {
        var lock = Glibc.flock()
        lock.l_type = type
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(clamping: start)
        lock.l_len = off_t(clamping: length)
        lock.l_pid = 0
        return lock
    }

    /// Tlock: never parks a worker. A conflict is answered BLOCKED at once; the client retries.
    func lock(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, fields: LockFields, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file, ref.entry.isOpen else { throw ServerErrno.badFid }
            guard let type = Self.hostLockType(fields.type) else { throw ServerErrno.invalid }
            let lock = Self.flock(type: type, start: fields.start, length: fields.length)
            let status: UInt8
            do throws(FileSystemError) {
                try backend.setLock(ref.entry.openFd, lock)
                status = LockStatus.success
            } catch {
                status = error.errno == EAGAIN || error.errno == EACCES ? LockStatus.blocked : LockStatus.error
            }
            return try encode(.lock(status: status), tag: tag, into: &w)
        }
    }

    /// Tgetlock: the first conflicting lock, or the request back with type UNLCK.
    func getlock(_ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, fields: GetlockFields, into w: inout WireWriter) throws(ServerErrno) -> Int {
        try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file, ref.entry.isOpen else { throw ServerErrno.badFid }
            guard let type = Self.hostLockType(fields.type) else { throw ServerErrno.invalid }
            let lock = try backend.getLock(ref.entry.openFd, Self.flock(type: type, start: fields.start, length: fields.length))
            var reply = fields
            switch Int32(lock.l_type) {
            case Int32(F_RDLCK): reply.type = LockType.read
            case Int32(F_WRLCK): reply.type = LockType.write
            default: reply.type = LockType.unlock
            }
            if reply.type != LockType.unlock {
                reply.start = UInt64(max(lock.l_start, 0))
                reply.length = UInt64(max(lock.l_len, 0))
                reply.processID = UInt32(bitPattern: lock.l_pid)
            }
            return try encode(.getlock(reply), tag: tag, into: &w)
        }
    }
}
