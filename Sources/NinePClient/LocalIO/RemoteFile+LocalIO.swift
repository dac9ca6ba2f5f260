import Glibc
import NinePWire

/// localio on an open file (docs/LOCALIO.md): after Tlopen or Tlcreate the file asks for a
/// grant; with one, reads and writes are pread and pwrite on the granted descriptor instead of
/// Tread and Twrite. A refusal leaves the file on 9P, silently.
extension RemoteFile {
    /// Asks for a grant when the connection speaks localio and the file is a regular file.
    /// Not for O_DIRECT opens yet: a direct descriptor needs aligned buffers and offsets,
    /// which 9P's path handles on the server and the local path will with the aligned split
    /// (docs/LOCALIO.md); until then those files stay on 9P.
    /// `opened`: the qid Tlcreate answered, when this fid was a directory's until then.
    func acquireLocalGrant(options: OpenOptions, opened: Qid? = nil) async {
        guard connection.localIO, !options.contains(.direct), (opened ?? qid).type & (Qid.typeDir | Qid.typeSymlink | Qid.typeAuth) == 0 else { return }
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
        guard let granted else { return }
        // Trust the descriptor, not the server's word about it: a regular file (a FIFO or a
        // socket from a misbehaving server would block pread forever), not O_DIRECT, and used
        // only for what its own access mode allows.
        var st = Glibc.stat()
        let hostFlags = fcntl(granted.fd, F_GETFL)
        guard fstat(granted.fd, &st) == 0, st.st_mode & 0o170000 == 0o100000, hostFlags >= 0, hostFlags & 0o40000 == 0 else {
            Glibc.close(granted.fd)
            return
        }
        let local = LocalDescriptor(fd: granted.fd, flags: LocalDescriptor.wireAccess(hostFlags))
        let replaced = state.withLock { state in
            defer { state.local = local }
            return state.local
        }
        if let replaced { Glibc.close(replaced.fd) }
    }

    /// Whether reads and writes of this file go through a granted descriptor.
    public var usesLocalIO: Bool { state.withLock { $0.local != nil } }

    /// pread on the grant: nil when the file has none (use 9P).
    func localRead(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int? {
        guard let local = state.withLock({ $0.local }), local.canRead else { return nil }
        // A closed connection ends the grants' use too: a restarted server may have changed
        // its policy, and 9P would fail the same way.
        if connection.isClosed { throw NinePError.connectionLost(.read).at(path) }
        while true {
            let n = pread(local.fd, buffer.baseAddress, buffer.count, off_t(Int64(bitPattern: offset)))
            if n >= 0 { return n }
            if errno != EINTR { throw NinePError(.server, errno: errno, operation: .read, path: path) }
        }
    }

    /// pwrite on the grant: nil when the file has none or it is not writable (use 9P).
    func localWrite(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws -> Int? {
        guard let local = state.withLock({ $0.local }), local.canWrite else { return nil }
        if connection.isClosed { throw NinePError.connectionLost(.write).at(path) }
        while true {
            let n = pwrite(local.fd, bytes.baseAddress, bytes.count, off_t(Int64(bitPattern: offset)))
            if n >= 0 { return n }
            if errno != EINTR { throw NinePError(.server, errno: errno, operation: .write, path: path) }
        }
    }

    /// Closes the granted descriptor (on close and deinit).
    func dropLocalGrant() {
        let local = state.withLock { state in
            defer { state.local = nil }
            return state.local
        }
        if let local { Glibc.close(local.fd) }
    }
}

/// A granted descriptor and its 9P2000.L open flags.
struct LocalDescriptor: Sendable {
    let fd: Int32
    let flags: UInt32

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
