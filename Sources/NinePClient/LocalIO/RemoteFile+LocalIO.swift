import Glibc
import NinePWire

/// localio on an open file (docs/LOCALIO.md): after Tlopen or Tlcreate the file asks for a
/// grant; with one, reads and writes are pread and pwrite on the granted descriptor instead of
/// Tread and Twrite. A refusal leaves the file on 9P, silently.
extension RemoteFile {
    /// Asks for a grant when the connection speaks localio and the file is a regular file.
    /// A direct open (O_DIRECT) gets a direct grant, used through `DirectSplit`.
    /// `opened`: the qid Tlcreate answered, when this fid was a directory's until then.
    func acquireLocalGrant(options: OpenOptions, opened: Qid? = nil) async {
        guard let grant = await requestGrant(allowDirect: true, opened: opened) else { return }
        install(grant)
    }

    /// Asks for a grant of this open file, whatever flags it was opened with
    /// (`open(flags:)` included), for a caller that uses the descriptor itself (`ninep mount`'s
    /// FUSE passthrough). Nil when the session has no localio, the file is not a regular file,
    /// or the server refuses. A grant that is not O_DIRECT also serves this handle's own `read`
    /// and `write` from then on (a direct one through the aligned split). The server may revoke it: see `LocalGrant.isRevoked`.
    public func requestLocalGrant() async -> LocalGrant? {
        guard let grant = await requestGrant(allowDirect: true) else { return nil }
        install(grant)
        return grant
    }

    /// The grant this handle's reads and writes use now, if any.
    public var localGrant: LocalGrant? { state.withLock { $0.local?.grant } }

    /// Tlocalgrant, and the checks of what came back.
    func requestGrant(allowDirect: Bool, opened: Qid? = nil) async -> LocalGrant? {
        let connection = self.connection
        guard connection.localIO, (opened ?? qid).type & (Qid.typeDir | Qid.typeSymlink | Qid.typeAuth) == 0 else { return nil }
        let fid = self.fid
        let grants = connection.grants
        var sentTag: UInt16 = 0
        let granted: (fd: Int32, flags: UInt32)? = try? await connection.call(.open, timeout: client.callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
            sentTag = tag
            try Request.localgrant(fid: fid).encode(tag: tag, into: &w)
        } decode: { response throws(NinePError) in
            // The reader filed the descriptor under this tag before it woke us.
            guard case let .localgrant(flags) = response, let fd = grants.take(tag: sentTag) else { throw .protocolViolation(.open) }
            return (fd, flags)
        }
        guard let granted else { return nil }
        // Trust the descriptor, not the server's word about it: a regular file (a FIFO or a
        // socket from a misbehaving server would block pread forever), O_DIRECT only when the
        // caller handles it, and used only for what its own access mode allows.
        var st = Glibc.stat()
        let hostFlags = fcntl(granted.fd, F_GETFL)
        let direct = hostFlags >= 0 && hostFlags & 0o40000 != 0
        guard fstat(granted.fd, &st) == 0, st.st_mode & 0o170000 == 0o100000, hostFlags >= 0, allowDirect || !direct else {
            Glibc.close(granted.fd)
            return nil
        }
        // A direct grant needs a buffered twin for unaligned heads and tails: the same open
        // file reopened without O_DIRECT (same access mode; the kernel checks the client's
        // own permission to the inode). Without one the file stays on 9P.
        var buffered: Int32 = -1
        if direct {
            let twinFlags = hostFlags & (O_ACCMODE | O_APPEND | O_DSYNC | O_SYNC) | O_CLOEXEC | O_NOCTTY
            buffered = Glibc.open("/proc/self/fd/\(granted.fd)", twinFlags)
            var twin = Glibc.stat()
            guard buffered >= 0, fstat(buffered, &twin) == 0, twin.st_ino == st.st_ino, twin.st_dev == st.st_dev else {
                if buffered >= 0 { Glibc.close(buffered) }
                Glibc.close(granted.fd)
                return nil
            }
        }
        let grant = LocalGrant(descriptor: granted.fd, flags: LocalDescriptor.wireAccess(hostFlags) | (direct ? OpenFlags.direct : 0), bufferedDescriptor: buffered)
        // Registered before anyone uses it: a revocation that names the fid finds it.
        grants.register(fid: fid, file: self)
        RevocationWatch.start(connection, on: client.executor)
        return grant
    }

    /// Makes `grant` the descriptor of this handle's reads and writes.
    func install(_ grant: LocalGrant) {
        state.withLock { $0.local = LocalDescriptor(grant: grant) }
    }

    /// The server revoked the grant (an Rlocalrevoke named the fid): reads and writes go
    /// through 9P from now on. The descriptor closes when the last read or write using it ends.
    func revokeLocalGrant() {
        let local = state.withLock { state in
            defer { state.local = nil }
            return state.local
        }
        local?.grant.markRevoked()
    }

    /// Whether reads and writes of this file go through a granted descriptor.
    public var usesLocalIO: Bool { state.withLock { $0.local != nil } }

    /// pread on the grant: nil when the file has none (use 9P). Large requests go to the IO
    /// threads (`LocalIOThreads`), direct ones through the aligned split (`DirectSplit`).
    func localRead(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) async throws -> Int? {
        guard let local = state.withLock({ $0.local }), local.canRead else { return nil }
        // A closed connection ends the grants' use too: a restarted server may have changed
        // its policy, and 9P would fail the same way.
        if connection.isClosed { throw NinePError.connectionLost(.read).at(path) }
        let n = await Self.transfer(local, buffer, at: Int64(bitPattern: offset), write: false)
        if n < 0 { throw NinePError(.server, errno: Int32(-n), operation: .read, path: path) }
        return n
    }

    /// pwrite on the grant: nil when the file has none or it is not writable (use 9P).
    func localWrite(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) async throws -> Int? {
        guard let local = state.withLock({ $0.local }), local.canWrite else { return nil }
        if connection.isClosed { throw NinePError.connectionLost(.write).at(path) }
        let n = await Self.transfer(local, UnsafeMutableRawBufferPointer(mutating: bytes), at: Int64(bitPattern: offset), write: true)
        if n < 0 { throw NinePError(.server, errno: Int32(-n), operation: .write, path: path) }
        return n
    }

    /// One read or write on a grant (`local` keeps its descriptors open meanwhile): the byte
    /// count, or -errno.
    private static func transfer(_ local: LocalDescriptor, _ buffer: UnsafeMutableRawBufferPointer, at offset: Int64, write: Bool) async -> Int {
        guard buffer.count > 0 else { return 0 }
        if local.grant.isDirect {
            if write { return await DirectSplit.write(direct: local.fd, buffered: local.grant.bufferedDescriptor, UnsafeRawBufferPointer(buffer), at: offset) }
            return await DirectSplit.read(direct: local.fd, buffered: local.grant.bufferedDescriptor, into: buffer, at: offset)
        }
        if buffer.count >= LocalIOThreads.threshold {
            return await LocalIOThreads.shared.transfer(fd: local.fd, buffer.baseAddress!, count: buffer.count, offset: offset, write: write)
        }
        return LocalIOThreads.perform(fd: local.fd, buffer.baseAddress!, count: buffer.count, offset: offset, write: write)
    }

    /// Lets go of the granted descriptor (on close, deinit and reconnect): it closes once no
    /// read or write uses it. Passthrough users holding the `LocalGrant` see it revoked.
    func dropLocalGrant() {
        let local = state.withLock { state in
            defer { state.local = nil }
            return state.local
        }
        if let local {
            local.grant.markRevoked()
            connection.grants.unregister(fid: fid, file: self)
        }
    }
}

/// A granted descriptor and its 9P2000.L open flags.
struct LocalDescriptor: Sendable {
    /// Holds the descriptor open for whoever copied this value (a read in progress).
    let grant: LocalGrant
    var fd: Int32 { grant.descriptor }
    var flags: UInt32 { grant.flags }

    init(grant: LocalGrant) { self.grant = grant }

    /// The 9P2000.L access mode of host open flags (F_GETFL).
    static func wireAccess(_ host: Int32) -> UInt32 {
        switch host & O_ACCMODE {
        case O_WRONLY: OpenFlags.writeOnly
        case O_RDWR: OpenFlags.readWrite
        default: OpenFlags.readOnly
        }
    }

    var canRead: Bool { flags & OpenFlags.accessMode != OpenFlags.writeOnly }
    var canWrite: Bool {
        let mode = flags & OpenFlags.accessMode
        return mode == OpenFlags.writeOnly || mode == OpenFlags.readWrite
    }
}
