/// A decoded T-message body. Strings and payloads are views into the frame it came from.
public enum Request: Equatable {
    case version(msize: UInt32, version: ByteView)
    case auth(afid: UInt32, uname: ByteView, aname: ByteView, nuname: UInt32)
    case attach(fid: UInt32, afid: UInt32, uname: ByteView, aname: ByteView, nuname: UInt32)
    case flush(oldtag: UInt16)
    case walk(fid: UInt32, newfid: UInt32, names: WalkNames)
    case lopen(fid: UInt32, flags: UInt32)
    case lcreate(fid: UInt32, name: ByteView, flags: UInt32, mode: UInt32, gid: UInt32)
    case read(fid: UInt32, offset: UInt64, count: UInt32)
    case write(fid: UInt32, offset: UInt64, data: ByteView)
    case clunk(fid: UInt32)
    case remove(fid: UInt32)
    case statfs(fid: UInt32)
    case getattr(fid: UInt32, mask: UInt64)
    case setattr(fid: UInt32, SetattrFields)
    case readdir(fid: UInt32, offset: UInt64, count: UInt32)
    case fsync(fid: UInt32, datasync: UInt32)
    case lock(fid: UInt32, LockFields)
    case getlock(fid: UInt32, GetlockFields)
    case link(dfid: UInt32, fid: UInt32, name: ByteView)
    case mkdir(dfid: UInt32, name: ByteView, mode: UInt32, gid: UInt32)
    case symlink(fid: UInt32, name: ByteView, target: ByteView, gid: UInt32)
    case mknod(dfid: UInt32, name: ByteView, mode: UInt32, major: UInt32, minor: UInt32, gid: UInt32)
    case rename(fid: UInt32, dfid: UInt32, name: ByteView)
    case renameat(olddirfid: UInt32, oldname: ByteView, newdirfid: UInt32, newname: ByteView)
    case unlinkat(dirfid: UInt32, name: ByteView, flags: UInt32)
    case readlink(fid: UInt32)
    case xattrwalk(fid: UInt32, newfid: UInt32, name: ByteView)
    case xattrcreate(fid: UInt32, name: ByteView, size: UInt64, flags: UInt32)
    /// localio: nonce[32], the bytes of the sealed memfd that came with Rversion.
    case localproof(nonce: LocalNonce)
    /// localio: a descriptor for the open fid, no wider than its open mode.
    case localgrant(fid: UInt32)
    /// localio: a long poll, answered when the server revokes grants (designed, not served yet).
    case localrevoke

    public var type: MessageType {
        switch self {
        case .version: .tversion
        case .auth: .tauth
        case .attach: .tattach
        case .flush: .tflush
        case .walk: .twalk
        case .lopen: .tlopen
        case .lcreate: .tlcreate
        case .read: .tread
        case .write: .twrite
        case .clunk: .tclunk
        case .remove: .tremove
        case .statfs: .tstatfs
        case .getattr: .tgetattr
        case .setattr: .tsetattr
        case .readdir: .treaddir
        case .fsync: .tfsync
        case .lock: .tlock
        case .getlock: .tgetlock
        case .link: .tlink
        case .mkdir: .tmkdir
        case .symlink: .tsymlink
        case .mknod: .tmknod
        case .rename: .trename
        case .renameat: .trenameat
        case .unlinkat: .tunlinkat
        case .readlink: .treadlink
        case .xattrwalk: .txattrwalk
        case .xattrcreate: .txattrcreate
        case .localproof: .tlocalproof
        case .localgrant: .tlocalgrant
        case .localrevoke: .tlocalrevoke
        }
    }
}

/// A decoded T-message: its tag and body.
public struct TMessage: Equatable {
    public var tag: UInt16
    public var request: Request

    public init(tag: UInt16, request: Request) {
        self.tag = tag
        self.request = request
    }

    /// Decodes one whole frame (size field included). The frame's size field must equal
    /// `frame.count` and be at most `msize`; any other input gives a `WireError`.
    public static func decode(_ frame: UnsafeRawBufferPointer, msize: UInt32) throws(WireError) -> TMessage {
        let header = try FrameHeader.decode(frame, msize: msize)
        guard Int(header.size) == frame.count else { throw .badSize(header.size) }
        guard let type = MessageType(rawValue: header.type) else { throw .unknownType(header.type) }
        var r = WireReader(frame, offset: NineP.headerSize)
        let request: Request
        switch type {
        case .tversion:
            request = .version(msize: try r.u32(), version: try r.string())
        case .tauth:
            request = .auth(afid: try r.u32(), uname: try r.string(), aname: try r.string(), nuname: try r.u32())
        case .tattach:
            request = .attach(fid: try r.u32(), afid: try r.u32(), uname: try r.string(), aname: try r.string(), nuname: try r.u32())
        case .tflush:
            request = .flush(oldtag: try r.u16())
        case .twalk:
            let fid = try r.u32()
            let newfid = try r.u32()
            let count = Int(try r.u16())
            guard count <= NineP.maxWalkElements else { throw .tooManyWalkElements(count) }
            let start = r.offset
            for _ in 0..<count { _ = try r.string() }
            let encoded = ByteView(UnsafeRawBufferPointer(rebasing: frame[start..<r.offset]))
            request = .walk(fid: fid, newfid: newfid, names: WalkNames(count: count, encoded: encoded))
        case .tlopen:
            request = .lopen(fid: try r.u32(), flags: try r.u32())
        case .tlcreate:
            request = .lcreate(fid: try r.u32(), name: try r.string(), flags: try r.u32(), mode: try r.u32(), gid: try r.u32())
        case .tread:
            request = .read(fid: try r.u32(), offset: try r.u64(), count: try r.u32())
        case .twrite:
            let fid = try r.u32()
            let offset = try r.u64()
            let count = try r.u32()
            guard Int(count) == r.remaining else { throw .countMismatch }
            request = .write(fid: fid, offset: offset, data: try r.view(count: Int(count)))
        case .tclunk:
            request = .clunk(fid: try r.u32())
        case .tremove:
            request = .remove(fid: try r.u32())
        case .tstatfs:
            request = .statfs(fid: try r.u32())
        case .tgetattr:
            request = .getattr(fid: try r.u32(), mask: try r.u64())
        case .tsetattr:
            let fid = try r.u32()
            let fields = SetattrFields(
                valid: try r.u32(), mode: try r.u32(), uid: try r.u32(), gid: try r.u32(), size: try r.u64(),
                atimeSeconds: try r.u64(), atimeNanoseconds: try r.u64(),
                mtimeSeconds: try r.u64(), mtimeNanoseconds: try r.u64())
            request = .setattr(fid: fid, fields)
        case .treaddir:
            request = .readdir(fid: try r.u32(), offset: try r.u64(), count: try r.u32())
        case .tfsync:
            request = .fsync(fid: try r.u32(), datasync: try r.u32())
        case .tlock:
            let fid = try r.u32()
            let fields = LockFields(
                type: try r.u8(), flags: try r.u32(), start: try r.u64(), length: try r.u64(),
                processID: try r.u32(), clientID: try r.string())
            request = .lock(fid: fid, fields)
        case .tgetlock:
            let fid = try r.u32()
            let fields = GetlockFields(
                type: try r.u8(), start: try r.u64(), length: try r.u64(), processID: try r.u32(), clientID: try r.string())
            request = .getlock(fid: fid, fields)
        case .tlink:
            request = .link(dfid: try r.u32(), fid: try r.u32(), name: try r.string())
        case .tmkdir:
            request = .mkdir(dfid: try r.u32(), name: try r.string(), mode: try r.u32(), gid: try r.u32())
        case .tsymlink:
            request = .symlink(fid: try r.u32(), name: try r.string(), target: try r.string(), gid: try r.u32())
        case .tmknod:
            request = .mknod(
                dfid: try r.u32(), name: try r.string(), mode: try r.u32(), major: try r.u32(), minor: try r.u32(), gid: try r.u32())
        case .trename:
            request = .rename(fid: try r.u32(), dfid: try r.u32(), name: try r.string())
        case .trenameat:
            request = .renameat(olddirfid: try r.u32(), oldname: try r.string(), newdirfid: try r.u32(), newname: try r.string())
        case .tunlinkat:
            request = .unlinkat(dirfid: try r.u32(), name: try r.string(), flags: try r.u32())
        case .treadlink:
            request = .readlink(fid: try r.u32())
        case .txattrwalk:
            request = .xattrwalk(fid: try r.u32(), newfid: try r.u32(), name: try r.string())
        case .txattrcreate:
            request = .xattrcreate(fid: try r.u32(), name: try r.string(), size: try r.u64(), flags: try r.u32())
        case .tlocalproof:
            request = .localproof(nonce: LocalNonce(try r.view(count: NineP.localNonceSize)))
        case .tlocalgrant:
            request = .localgrant(fid: try r.u32())
        case .tlocalrevoke:
            request = .localrevoke
        default:
            throw .unknownType(header.type)
        }
        try r.expectEnd()
        return TMessage(tag: header.tag, request: request)
    }
}

extension Request {
    /// Encodes this request as one frame at the writer's position; returns the frame length.
    @discardableResult
    public func encode(tag: UInt16, into w: inout WireWriter) throws(WireError) -> Int {
        try w.beginFrame(type, tag: tag)
        switch self {
        case let .version(msize, version):
            try w.u32(msize); try w.string(version)
        case let .auth(afid, uname, aname, nuname):
            try w.u32(afid); try w.string(uname); try w.string(aname); try w.u32(nuname)
        case let .attach(fid, afid, uname, aname, nuname):
            try w.u32(fid); try w.u32(afid); try w.string(uname); try w.string(aname); try w.u32(nuname)
        case let .flush(oldtag):
            try w.u16(oldtag)
        case let .walk(fid, newfid, names):
            try w.u32(fid); try w.u32(newfid); try w.u16(UInt16(names.count))
            for name in names { try w.string(name) }
        case let .lopen(fid, flags):
            try w.u32(fid); try w.u32(flags)
        case let .lcreate(fid, name, flags, mode, gid):
            try w.u32(fid); try w.string(name); try w.u32(flags); try w.u32(mode); try w.u32(gid)
        case let .read(fid, offset, count):
            try w.u32(fid); try w.u64(offset); try w.u32(count)
        case let .write(fid, offset, data):
            try w.u32(fid); try w.u64(offset); try w.u32(UInt32(data.count)); try w.bytes(data)
        case let .clunk(fid), let .remove(fid), let .statfs(fid), let .readlink(fid):
            try w.u32(fid)
        case let .getattr(fid, mask):
            try w.u32(fid); try w.u64(mask)
        case let .setattr(fid, f):
            try w.u32(fid); try w.u32(f.valid); try w.u32(f.mode); try w.u32(f.uid); try w.u32(f.gid)
            try w.u64(f.size); try w.u64(f.atimeSeconds); try w.u64(f.atimeNanoseconds)
            try w.u64(f.mtimeSeconds); try w.u64(f.mtimeNanoseconds)
        case let .readdir(fid, offset, count):
            try w.u32(fid); try w.u64(offset); try w.u32(count)
        case let .fsync(fid, datasync):
            try w.u32(fid); try w.u32(datasync)
        case let .lock(fid, f):
            try w.u32(fid); try w.u8(f.type); try w.u32(f.flags); try w.u64(f.start); try w.u64(f.length)
            try w.u32(f.processID); try w.string(f.clientID)
        case let .getlock(fid, f):
            try w.u32(fid); try w.u8(f.type); try w.u64(f.start); try w.u64(f.length)
            try w.u32(f.processID); try w.string(f.clientID)
        case let .link(dfid, fid, name):
            try w.u32(dfid); try w.u32(fid); try w.string(name)
        case let .mkdir(dfid, name, mode, gid):
            try w.u32(dfid); try w.string(name); try w.u32(mode); try w.u32(gid)
        case let .symlink(fid, name, target, gid):
            try w.u32(fid); try w.string(name); try w.string(target); try w.u32(gid)
        case let .mknod(dfid, name, mode, major, minor, gid):
            try w.u32(dfid); try w.string(name); try w.u32(mode); try w.u32(major); try w.u32(minor); try w.u32(gid)
        case let .rename(fid, dfid, name):
            try w.u32(fid); try w.u32(dfid); try w.string(name)
        case let .renameat(olddirfid, oldname, newdirfid, newname):
            try w.u32(olddirfid); try w.string(oldname); try w.u32(newdirfid); try w.string(newname)
        case let .unlinkat(dirfid, name, flags):
            try w.u32(dirfid); try w.string(name); try w.u32(flags)
        case let .xattrwalk(fid, newfid, name):
            try w.u32(fid); try w.u32(newfid); try w.string(name)
        case let .xattrcreate(fid, name, size, flags):
            try w.u32(fid); try w.string(name); try w.u64(size); try w.u32(flags)
        case let .localproof(nonce):
            // Exactly nonce[32]: a shorter or longer nonce cannot be encoded.
            guard nonce.bytes.count == NineP.localNonceSize else { throw .countMismatch }
            try w.bytes(nonce.bytes)
        case let .localgrant(fid):
            try w.u32(fid)
        case .localrevoke:
            break
        }
        return w.finishFrame()
    }
}

extension WireWriter {
    /// Encodes a Twalk from any names (client side: Swift strings, no intermediate view).
    /// Inlinable so that it is specialised in the caller: unspecialised, iterating the names
    /// allocated once per name (Benchmarks/results/micro.md).
    @inlinable @discardableResult
    public mutating func twalk<Name: WireBytes>(tag: UInt16, fid: UInt32, newfid: UInt32, names: some Collection<Name>) throws(WireError) -> Int {
        guard names.count <= NineP.maxWalkElements else { throw .tooManyWalkElements(names.count) }
        try beginFrame(.twalk, tag: tag)
        try u32(fid); try u32(newfid); try u16(UInt16(names.count))
        for name in names { try string(name) }
        return finishFrame()
    }

    /// Encodes a Twrite whose payload is copied from `data` (inlinable, as `twalk`).
    @inlinable @discardableResult
    public mutating func twrite(tag: UInt16, fid: UInt32, offset: UInt64, data: some WireBytes) throws(WireError) -> Int {
        try beginFrame(.twrite, tag: tag)
        try u32(fid); try u64(offset); try u32(UInt32(data.wireByteCount)); try bytes(data)
        return finishFrame()
    }
}
