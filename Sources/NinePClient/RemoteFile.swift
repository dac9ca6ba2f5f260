import NinePMemory
import Glibc
import NinePWire

/// A fid on the server: a file or directory reached by a walk, opened or not. `close()` clunks
/// it; a handle dropped without `close()` is clunked in the background.
///
/// Reads and writes go straight between the caller's buffer and the connection's message
/// buffers: after warm-up they allocate nothing.
public final class RemoteFile: Sendable {
    public let client: NinePClient
    let fid: UInt32
    /// The qid the walk ended at (or the open/create returned).
    public let qid: Qid
    /// The path it was reached by (for messages).
    public let path: String
    let state = AdaptiveMutex(FileState())

    /// The attach fid this one was walked from (its own number for an attach).
    let root: UInt32
    /// For the root of a per-user attach: who it was attached as (made again on reconnect).
    let attachedAs: AttachIdentity?

    struct AttachIdentity: Sendable {
        let uname: String
        let uid: UInt32
    }

    struct FileState {
        var closed = false
        var iounit: UInt32 = 0
        /// What a reconnect needs (kept only with `configuration.reconnect`; see `Reconnector`).
        var recovery = Recovery()
        /// localio's granted descriptor (RemoteFile+LocalIO), if any.
        var local: LocalDescriptor? = nil
    }

    init(client: NinePClient, fid: UInt32, qid: Qid, path: String, iounit: UInt32 = 0, root: UInt32 = FidAllocator.root, attachedAs: AttachIdentity? = nil) {
        self.client = client
        self.fid = fid
        self.qid = qid
        self.path = path
        self.root = root
        self.attachedAs = attachedAs
        state.withLock { $0.iounit = iounit }
        client.reconnector?.register(self)
    }

    deinit {
        dropLocalGrant()
        if !state.withLock({ $0.closed }) {
            client.reconnector?.unregister(fid, self)
            client.connection.clunkLater(fid)
        }
    }

    var connection: ClientConnection { client.connection }

    /// The most data one read or write moves (the server's iounit, or what the msize allows).
    public var ioSize: Int {
        let iounit = Int(state.withLock { $0.iounit })
        let limit = client.maxIOSize
        return iounit > 0 ? min(iounit, limit) : limit
    }

    /// Clunks the fid. Safe to call twice.
    public func close() async {
        if closeLocally() { await client.clunk(fid) }
    }

    /// Clunks the fid without waiting for the server's answer (`close` waits): for a front end
    /// that has nothing to do with the answer, e.g. the FUSE mount's RELEASE, which the kernel
    /// sends in the background. Safe to call twice, and after `close`.
    public func closeWithoutWaiting() {
        if closeLocally() { connection.clunkWithoutWaiting(fid) }
    }

    /// What closing does on this side (marked closed, localio grant dropped, no longer
    /// recovered by a reconnect); true when the fid was open, and so is to be clunked.
    private func closeLocally() -> Bool {
        let wasClosed = state.withLock { state in
            defer { state.closed = true }
            return state.closed
        }
        dropLocalGrant()
        if !wasClosed { client.reconnector?.unregister(fid, self) }
        return !wasClosed
    }

    /// Marks the fid as clunked by someone else (no clunk on close or deinit).
    func markClosed() {
        state.withLock { $0.closed = true }
        dropLocalGrant()  // the fid is gone: so is its grant
        client.reconnector?.unregister(fid, self)
    }

    /// Opens this fid (Tlopen).
    public func open(_ mode: AccessMode = .read, options: OpenOptions = []) async throws {
        try checkUsable(.open)
        let fid = self.fid
        let iounit = try await connection.call(.open, timeout: client.callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
            try Request.lopen(fid: fid, flags: mode.flags | options.rawValue).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            guard case let .lopen(_, iounit) = response else { throw .protocolViolation(.open) }
            return iounit
        }
        state.withLock { $0.iounit = iounit }
        noteOpened(flags: mode.flags | options.rawValue)
        await acquireLocalGrant(options: options)
    }

    // MARK: Data

    /// One Tread of at most `buffer.count` (and `ioSize`) bytes at `offset`; returns how many
    /// bytes arrived (0 at the end of the file).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) async throws -> Int {
        try checkUsable(.read)
        let fid = self.fid
        let count = UInt32(min(buffer.count, ioSize))
        if let n = try await localRead(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(count)]), at: offset) { return n }
        do {
            return try await connection.call(.read, timeout: client.callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.read(fid: fid, offset: offset, count: count).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case let .read(data) = response, data.count <= Int(count) else { throw .protocolViolation(.read) }
                if data.count > 0 { buffer.baseAddress!.copyMemory(from: data.base.baseAddress!, byteCount: data.count) }
                return data.count
            }
        } catch let error as NinePError {
            throw error.at(path)
        }
    }

    /// Up to `count` bytes at `offset`: Treads of `ioSize` until `count` bytes or a short read
    /// (the end of the file, or all that a FIFO or socket has now).
    public func read(at offset: UInt64, count: Int) async throws -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        defer { buffer.deallocate() }
        var done = 0
        while done < count {
            let asked = min(count - done, ioSize)
            let n = try await read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + asked)]), at: offset + UInt64(done))
            done += n
            // A short read is the end of the file (or all a FIFO has now): do not wait for more.
            if n < asked { break }
        }
        return Array(UnsafeRawBufferPointer(rebasing: buffer[0..<done]))
    }

    /// One Twrite of at most `ioSize` bytes of `bytes` at `offset`; returns how many the server took.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) async throws -> Int {
        try checkUsable(.write)
        let fid = self.fid
        let data = ByteView(UnsafeRawBufferPointer(rebasing: bytes[0..<min(bytes.count, ioSize)]))
        if let n = try await localWrite(data.base, at: offset) { return n }
        do {
            return try await connection.call(.write, timeout: client.callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                try w.twrite(tag: tag, fid: fid, offset: offset, data: data)
            } decode: { response throws(NinePError) in
                guard case let .write(count) = response, Int(count) <= data.count else { throw .protocolViolation(.write) }
                return Int(count)
            }
        } catch let error as NinePError {
            throw error.at(path)
        }
    }

    /// Writes all of `bytes` at `offset` (as many Twrites as it takes).
    public func write(contentsOf bytes: [UInt8], at offset: UInt64) async throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        var done = 0
        while done < bytes.count {
            let n = try await write(UnsafeRawBufferPointer(rebasing: buffer[done..<bytes.count]), at: offset + UInt64(done))
            guard n > 0 else { throw NinePError(.server, errno: EIO, operation: .write, path: path) }
            done += n
        }
    }

    // MARK: Metadata

    /// Tgetattr.
    public func stat(_ mask: UInt64 = GetattrMask.basic | GetattrMask.btime) async throws -> FileAttributes {
        try checkUsable(.getattr)
        let fid = self.fid
        do {
            return try await connection.call(.getattr, timeout: client.callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.getattr(fid: fid, mask: mask).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case let .getattr(attributes) = response else { throw .protocolViolation(.getattr) }
                return FileAttributes(attributes)
            }
        } catch let error as NinePError {
            throw error.at(path)
        }
    }

    /// Tsetattr.
    public func setAttributes(_ changes: AttributeChanges) async throws {
        try checkUsable(.setattr)
        let fid = self.fid
        let fields = changes.wireFields
        do {
            try await connection.call(.setattr, timeout: client.callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.setattr(fid: fid, fields).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case .setattr = response else { throw .protocolViolation(.setattr) }
            }
        } catch let error as NinePError {
            throw error.at(path)
        }
    }

    /// Tfsync (of an open file).
    public func fsync(dataOnly: Bool = false) async throws {
        try checkUsable(.fsync)
        let fid = self.fid
        do {
            try await connection.call(.fsync, timeout: client.callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.fsync(fid: fid, datasync: dataOnly ? 1 : 0).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case .fsync = response else { throw .protocolViolation(.fsync) }
            }
        } catch let error as NinePError {
            throw error.at(path)
        }
    }

    /// Tlock on the open file (a POSIX record lock; `length` 0 means to the end). With `wait`,
    /// retries while the server answers BLOCKED (as the kernel client does); the wait ends
    /// when the task is cancelled. Returns false when the lock is held elsewhere (no `wait`).
    public func lock(_ kind: LockKind, start: UInt64 = 0, length: UInt64 = 0, wait: Bool = false) async throws -> Bool {
        var pause = Duration.milliseconds(5)
        while true {
            let status = try await lockOnce(kind, start: start, length: length)
            switch status {
            case LockStatus.success:
                if kind != .unlock { noteLockHeld() }
                return true
            case LockStatus.blocked, LockStatus.grace:
                guard wait else { return false }
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(200))
            default:
                throw NinePError(.server, errno: ENOLCK, operation: .lock, path: path)
            }
        }
    }

    private func lockOnce(_ kind: LockKind, start: UInt64, length: UInt64) async throws -> UInt8 {
        try checkUsable(.lock)
        let fid = self.fid
        let fields = LockFields(
            type: kind.wire, flags: 0, start: start, length: length, processID: UInt32(bitPattern: getpid()),
            clientID: ByteView(static: "ninep"))
        do {
            return try await connection.call(.lock, timeout: client.callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.lock(fid: fid, fields).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case let .lock(status) = response else { throw .protocolViolation(.lock) }
                return status
            }
        } catch let error as NinePError {
            throw error.at(path)
        }
    }

    /// The entries of this (opened) directory, read with Treaddir as they are consumed.
    public func entries() -> DirectoryListing { DirectoryListing(directory: self, closeWhenDone: false) }
}
