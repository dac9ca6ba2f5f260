import NinePWire

/// One request read from /dev/fuse, decoded without copying: names, WRITE data and xattr values
/// are views into the buffer the request was read into, valid while that buffer is held.
public enum FuseRequest: Equatable {
    case `init`(FuseInitIn)
    case destroy
    case lookup(name: ByteView)
    case forget(lookups: UInt64)
    case batchForget(FuseForgetList)
    case getattr(FuseGetattrIn)
    case setattr(FuseSetattrIn)
    case readlink
    /// SYMLINK carries the new link's name, then its target.
    case symlink(name: ByteView, target: ByteView)
    case mknod(FuseMknodIn, name: ByteView)
    case mkdir(FuseMkdirIn, name: ByteView)
    case unlink(name: ByteView)
    case rmdir(name: ByteView)
    case rename(newParent: UInt64, oldName: ByteView, newName: ByteView)
    /// RENAME2: `flags` are renameat2's (RENAME_NOREPLACE 1, RENAME_EXCHANGE 2, RENAME_WHITEOUT 4).
    case rename2(newParent: UInt64, flags: UInt32, oldName: ByteView, newName: ByteView)
    case link(oldNodeID: UInt64, name: ByteView)
    case open(FuseOpenIn)
    case read(FuseReadIn)
    case write(FuseWriteIn, data: ByteView)
    case statfs
    case release(FuseReleaseIn)
    case fsync(FuseFsyncIn)
    case setxattr(FuseSetxattrIn, name: ByteView, value: ByteView)
    case getxattr(size: UInt32, name: ByteView)
    case listxattr(size: UInt32)
    case removexattr(name: ByteView)
    case flush(FuseFlushIn)
    case opendir(FuseOpenIn)
    case readdir(FuseReadIn)
    case releasedir(FuseReleaseIn)
    case fsyncdir(FuseFsyncIn)
    case getlk(FuseLockIn)
    case setlk(FuseLockIn)
    case setlkw(FuseLockIn)
    case access(mask: UInt32)
    case create(FuseCreateIn, name: ByteView)
    /// INTERRUPT names the `unique` of the request to interrupt.
    case interrupt(unique: UInt64)
    case fallocate(FuseFallocateIn)
    case readdirplus(FuseReadIn)
    /// An opcode this codec does not decode: answer ENOSYS (the kernel then stops sending most).
    case unsupported(FuseOpcode)

    /// What the session negotiated that changes how requests are laid out.
    public struct Layout: Sendable, Equatable {
        /// FUSE_SETXATTR_EXT: SETXATTR has the 16-byte struct.
        public var setxattrExtended: Bool
        public init(setxattrExtended: Bool = false) { self.setxattrExtended = setxattrExtended }
    }

    /// Decodes one request: exactly the bytes one read(2) of /dev/fuse returned.
    public static func decode(_ bytes: UnsafeRawBufferPointer, layout: Layout = Layout()) throws(FuseCodecError) -> (FuseInHeader, FuseRequest) {
        var cursor = FuseReaderCursor(bytes)
        guard bytes.count >= FuseInHeader.wireSize else {
            throw .truncated(opcode: 0, needed: FuseInHeader.wireSize, have: bytes.count)
        }
        let header = try FuseInHeader(reading: &cursor)
        guard Int(header.length) == bytes.count else { throw .lengthMismatch(header: header.length, read: bytes.count) }
        // Extensions (security context, supplementary group) sit at the end; this daemon does
        // not negotiate them, but a body must never be read into them.
        let extensionBytes = Int(header.extensionUnits) * 8
        guard extensionBytes <= bytes.count - FuseInHeader.wireSize else {
            throw .truncated(opcode: header.opcode.rawValue, needed: FuseInHeader.wireSize + extensionBytes, have: bytes.count)
        }
        let body = UnsafeRawBufferPointer(rebasing: bytes[FuseInHeader.wireSize..<(bytes.count - extensionBytes)])
        var r = FuseReaderCursor(FuseReader(body, opcode: header.opcode.rawValue))
        let request = try decodeBody(header.opcode, &r, layout: layout)
        return (header, request)
    }

    static func decodeBody(_ opcode: FuseOpcode, _ r: inout FuseReaderCursor, layout: Layout) throws(FuseCodecError) -> FuseRequest {
        func fixed<T: FuseStruct>(_: T.Type) throws(FuseCodecError) -> T {
            let value = try T(reading: &r)
            try r.expectEnd()
            return value
        }
        func name() throws(FuseCodecError) -> ByteView { try r.reader.name() }
        func lastName() throws(FuseCodecError) -> ByteView {
            let view = try r.reader.name()
            try r.expectEnd()
            return view
        }
        switch opcode {
        case .`init`: return .`init`(try FuseInitIn(reading: &r))
        case .destroy: try r.expectEnd(); return .destroy
        case .lookup: return .lookup(name: try lastName())
        case .forget:
            try r.require(8)
            let lookups = try r.u64()
            try r.expectEnd()
            return .forget(lookups: lookups)
        case .batchForget:
            try r.require(8)
            let count = try r.u32()
            _ = try r.u32()
            let needed = Int(count) * FuseForgetOne.wireSize
            guard r.remaining == needed else {
                if r.remaining < needed { throw .truncated(opcode: opcode.rawValue, needed: r.offset + needed, have: r.offset + r.remaining) }
                throw .trailingBytes(opcode: opcode.rawValue, count: r.remaining - needed)
            }
            return .batchForget(FuseForgetList(entries: try r.reader.view(count: needed)))
        case .getattr: return .getattr(try fixed(FuseGetattrIn.self))
        case .setattr: return .setattr(try fixed(FuseSetattrIn.self))
        case .readlink: try r.expectEnd(); return .readlink
        case .symlink:
            let linkName = try name()
            return .symlink(name: linkName, target: try lastName())
        case .mknod:
            let fields = try FuseMknodIn(reading: &r)
            return .mknod(fields, name: try lastName())
        case .mkdir:
            let fields = try FuseMkdirIn(reading: &r)
            return .mkdir(fields, name: try lastName())
        case .unlink: return .unlink(name: try lastName())
        case .rmdir: return .rmdir(name: try lastName())
        case .rename:
            try r.require(8)
            let newParent = try r.u64()
            let oldName = try name()
            return .rename(newParent: newParent, oldName: oldName, newName: try lastName())
        case .rename2:
            try r.require(16)
            let newParent = try r.u64()
            let flags = try r.u32()
            _ = try r.u32()
            let oldName = try name()
            return .rename2(newParent: newParent, flags: flags, oldName: oldName, newName: try lastName())
        case .link:
            try r.require(8)
            let old = try r.u64()
            return .link(oldNodeID: old, name: try lastName())
        case .open: return .open(try fixed(FuseOpenIn.self))
        case .opendir: return .opendir(try fixed(FuseOpenIn.self))
        case .read: return .read(try fixed(FuseReadIn.self))
        case .readdir: return .readdir(try fixed(FuseReadIn.self))
        case .readdirplus: return .readdirplus(try fixed(FuseReadIn.self))
        case .write:
            let fields = try FuseWriteIn(reading: &r)
            let data = r.reader.rest()
            guard data.count == Int(fields.size) else { throw .sizeMismatch(opcode: opcode.rawValue, declared: fields.size, present: data.count) }
            return .write(fields, data: data)
        case .statfs: try r.expectEnd(); return .statfs
        case .release: return .release(try fixed(FuseReleaseIn.self))
        case .releasedir: return .releasedir(try fixed(FuseReleaseIn.self))
        case .fsync: return .fsync(try fixed(FuseFsyncIn.self))
        case .fsyncdir: return .fsyncdir(try fixed(FuseFsyncIn.self))
        case .flush: return .flush(try fixed(FuseFlushIn.self))
        case .setxattr:
            try r.require(layout.setxattrExtended ? FuseSetxattrIn.extendedSize : FuseSetxattrIn.compatibleSize)
            let size = try r.u32()
            let flags = try r.u32()
            var extra: UInt32 = 0
            if layout.setxattrExtended { extra = try r.u32(); _ = try r.u32() }
            let attribute = try name()
            let value = r.reader.rest()
            guard value.count == Int(size) else { throw .sizeMismatch(opcode: opcode.rawValue, declared: size, present: value.count) }
            return .setxattr(FuseSetxattrIn(size: size, flags: flags, setxattrFlags: extra), name: attribute, value: value)
        case .getxattr:
            try r.require(8)
            let size = try r.u32()
            _ = try r.u32()
            return .getxattr(size: size, name: try lastName())
        case .listxattr:
            try r.require(8)
            let size = try r.u32()
            _ = try r.u32()
            try r.expectEnd()
            return .listxattr(size: size)
        case .removexattr: return .removexattr(name: try lastName())
        case .getlk: return .getlk(try fixed(FuseLockIn.self))
        case .setlk: return .setlk(try fixed(FuseLockIn.self))
        case .setlkw: return .setlkw(try fixed(FuseLockIn.self))
        case .access:
            try r.require(8)
            let mask = try r.u32()
            _ = try r.u32()
            try r.expectEnd()
            return .access(mask: mask)
        case .create:
            let fields = try FuseCreateIn(reading: &r)
            return .create(fields, name: try lastName())
        case .interrupt:
            try r.require(8)
            let unique = try r.u64()
            try r.expectEnd()
            return .interrupt(unique: unique)
        case .fallocate: return .fallocate(try fixed(FuseFallocateIn.self))
        default: return .unsupported(opcode)
        }
    }
}

/// The entries of a BATCH_FORGET, read in place.
public struct FuseForgetList: Equatable, RandomAccessCollection {
    let entries: ByteView
    public var startIndex: Int { 0 }
    public var endIndex: Int { entries.count / FuseForgetOne.wireSize }
    public subscript(position: Int) -> FuseForgetOne {
        let at = position * FuseForgetOne.wireSize
        let raw = entries.base
        return FuseForgetOne(
            nodeID: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)),
            lookups: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 8, as: UInt64.self)))
    }
}
