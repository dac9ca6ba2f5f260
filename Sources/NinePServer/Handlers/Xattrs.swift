import CNinePShims
import Glibc
import NinePWire

extension Worker {
    static var maxXattrSize: Int { 65536 }
    static var xattrCreate: UInt32 { 1 }
    static var xattrReplace: UInt32 { 2 }

    /// Txattrwalk: newfid holds the value of `name` (or, for an empty name, the list of
    /// names), read now; Tread on newfid returns it.
    func xattrwalk(
        _ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, newfid: UInt32, name: ByteView, into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        let cName = try cString(name, slot: 0, limit: 255).get()
        try requireAllocatable()  // the value or name list is copied into the fid
        return try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file else { throw ServerErrno.badFid }
            let restricted = restrictsXattrs(ref.entry)
            if restricted && name.starts(with: Self.trustedPrefix) { throw ServerErrno(LinuxErrno.ENODATA) }
            let fd = ref.entry.pathFd
            var value = [UInt8](repeating: 0, count: Self.maxXattrSize)
            let read: Result<Int, FileSystemError> = value.withUnsafeMutableBytes { buffer in
                do throws(FileSystemError) {
                    return .success(name.count == 0 ? try backend.listXattrs(fd, into: buffer) : try backend.getXattr(fd, cName, into: buffer))
                } catch {
                    return .failure(error)
                }
            }
            var n = try read.get()
            value.removeLast(value.count - n)
            if restricted && name.count == 0 {
                // The list an unprivileged caller gets from the kernel: no trusted.* names.
                value = Array(value.split(separator: 0, omittingEmptySubsequences: true)
                    .filter { !$0.starts(with: Self.trustedPrefix) }
                    .joined(separator: [0]))
                if !value.isEmpty { value.append(0) }
                n = value.count
            }
            let copy = try descriptor { () throws(FileSystemError) -> Int32 in try backend.duplicate(fd) }
            var entry = FidEntry<Backend>()
            entry.kind = .xattrRead
            entry.pathFd = copy
            entry.uid = ref.entry.uid
            entry.qid = ref.entry.qid
            entry.export = ref.entry.export
            entry.xattr = XattrState(name: Array(name), value: value, expectedSize: n, flags: 0)
            do throws(FidTableFailure) {
                connection.fids.release(try connection.fids.insert(newfid, entry))
            } catch {
                backend.close(copy)
                throw Self.fidError(for: error)
            }
            return try encode(.xattrwalk(size: UInt64(n)), tag: tag, into: &w)
        }
    }

    /// Txattrcreate: fid becomes an xattr fid collecting `size` bytes of value through Twrite;
    /// Tclunk sets it.
    func xattrcreate(
        _ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, name: ByteView, size: UInt64, flags: UInt32, into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        _ = try cString(name, slot: 0, limit: 255).get()
        if name.count == 0 { throw ServerErrno.invalid }
        try requireAllocatable()  // the value is collected in the fid
        guard size <= UInt64(Self.maxXattrSize) else { throw ServerErrno(LinuxErrno.E2BIG) }
        guard flags & ~UInt32(Self.xattrCreate | Self.xattrReplace) == 0 else { throw ServerErrno.invalid }
        return try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            try requireWritable(ref.entry)
            guard ref.entry.kind == .file, !ref.entry.isOpen else { throw ServerErrno.badFid }
            if restrictsXattrs(ref.entry) && !(name.starts(with: Self.userPrefix) || name.starts(with: Self.systemPrefix)) {
                throw ServerErrno(LinuxErrno.EPERM)
            }
            var value = [UInt8]()
            value.reserveCapacity(Int(size))
            let state = XattrState(name: Array(name), value: value, expectedSize: Int(size), flags: Int32(flags))
            connection.fids.update(&ref) { entry in
                entry.kind = .xattrWrite
                entry.xattr = state
            }
            return try encode(.xattrcreate, tag: tag, into: &w)
        }
    }

    static var userPrefix: [UInt8] { xattrUserPrefix }
    static var systemPrefix: [UInt8] { xattrSystemPrefix }
    static var trustedPrefix: [UInt8] { xattrTrustedPrefix }

    /// True when a request for `uid` must be held to what the kernel lets an unprivileged
    /// user do with xattrs. A worker acting for a user other than root has dropped only the
    /// file-system capabilities (fsuid), and keeps CAP_SYS_ADMIN and CAP_SETFCAP: without this
    /// check any user could set trusted.* and security.* attributes, security.capability on
    /// their own program among them (root on the host), and read trusted.* ones.
    func restrictsXattrs(_ entry: FidEntry<Backend>) -> Bool {
        entry.export?.switchesIdentity == true && entry.uid != 0
    }

    /// Sets the collected value; an empty value with XATTR_REPLACE (how the kernel client
    /// removes an attribute) removes it.
    func commitXattr(_ entry: FidEntry<Backend>, _ xattr: XattrState) throws(ServerErrno) {
        try requireWritable(entry)
        let fd = entry.pathFd
        var name = xattr.name
        name.append(0)
        // Sealed first: a Twrite still in flight on another worker fails rather than change
        // the value after it was checked.
        let (complete, failure): (Bool, FileSystemError?) = xattr.sealed { value in
            guard value.count == xattr.expectedSize else { return (false, nil) }
            let failure: FileSystemError? = name.withUnsafeBufferPointer { namePointer in
                let cName = UnsafeRawPointer(namePointer.baseAddress!).assumingMemoryBound(to: CChar.self)
                do throws(FileSystemError) {
                    if xattr.expectedSize == 0 && xattr.flags & Int32(Self.xattrReplace) != 0 {
                        try backend.removeXattr(fd, cName)
                    } else {
                        let setFailure: FileSystemError? = value.withUnsafeBytes { bytes in
                            do throws(FileSystemError) { try backend.setXattr(fd, cName, value: bytes, flags: xattr.flags) } catch { return error }
                            return nil
                        }
                        if let setFailure { throw setFailure }
                    }
                } catch {
                    return error
                }
                return nil
            }
            return (true, failure)
        }
        guard complete else { throw ServerErrno.invalid }
        if let failure { throw failure }
    }
}

// Stored once (a generic type cannot hold static stored properties).
private let xattrUserPrefix: [UInt8] = Array("user.".utf8)
private let xattrSystemPrefix: [UInt8] = Array("system.".utf8)
private let xattrTrustedPrefix: [UInt8] = Array("trusted.".utf8)
