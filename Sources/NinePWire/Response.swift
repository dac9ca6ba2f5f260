/// A decoded R-message body. Payloads and strings are views into the frame it came from.
public enum Response: Equatable {
    case version(msize: UInt32, version: ByteView)
    case auth(aqid: Qid)
    case attach(qid: Qid)
    case lerror(ecode: UInt32)
    /// 9P2000.u's Rerror: the server's message and its errno (ename[s] errno[4]).
    case error(ename: ByteView, errno: UInt32)
    case flush
    case walk(qids: QidList)
    case lopen(qid: Qid, iounit: UInt32)
    case lcreate(qid: Qid, iounit: UInt32)
    case read(data: ByteView)
    case write(count: UInt32)
    case clunk
    case remove
    case statfs(StatfsFields)
    case getattr(Attributes)
    case setattr
    case readdir(entries: DirEntries)
    case fsync
    case lock(status: UInt8)
    case getlock(GetlockFields)
    case link
    case mkdir(qid: Qid)
    case symlink(qid: Qid)
    case mknod(qid: Qid)
    case rename
    case renameat
    case unlinkat
    case readlink(target: ByteView)
    case xattrwalk(size: UInt64)
    case xattrcreate
    /// localio: the locality proof was accepted.
    case localproof
    /// localio: a descriptor is attached to this reply's bytes (SCM_RIGHTS); `flags` are its
    /// 9P2000.L open flags (access mode, append, direct, sync).
    case localgrant(flags: UInt32)
    /// localio: the fids whose grants are revoked (count[2] fid[4]*count).
    case localrevoke(fids: FidList)

    public var type: MessageType {
        switch self {
        case .version: .rversion
        case .auth: .rauth
        case .attach: .rattach
        case .lerror: .rlerror
        case .error: .rerror
        case .flush: .rflush
        case .walk: .rwalk
        case .lopen: .rlopen
        case .lcreate: .rlcreate
        case .read: .rread
        case .write: .rwrite
        case .clunk: .rclunk
        case .remove: .rremove
        case .statfs: .rstatfs
        case .getattr: .rgetattr
        case .setattr: .rsetattr
        case .readdir: .rreaddir
        case .fsync: .rfsync
        case .lock: .rlock
        case .getlock: .rgetlock
        case .link: .rlink
        case .mkdir: .rmkdir
        case .symlink: .rsymlink
        case .mknod: .rmknod
        case .rename: .rrename
        case .renameat: .rrenameat
        case .unlinkat: .runlinkat
        case .readlink: .rreadlink
        case .xattrwalk: .rxattrwalk
        case .xattrcreate: .rxattrcreate
        case .localproof: .rlocalproof
        case .localgrant: .rlocalgrant
        case .localrevoke: .rlocalrevoke
        }
    }
}

/// A decoded R-message: its tag and body.
public struct RMessage: Equatable {
    public var tag: UInt16
    public var response: Response

    public init(tag: UInt16, response: Response) {
        self.tag = tag
        self.response = response
    }

    /// Decodes one whole reply frame; the same guarantees as `TMessage.decode`.
    public static func decode(_ frame: UnsafeRawBufferPointer, msize: UInt32) throws(WireError) -> RMessage {
        let header = try FrameHeader.decode(frame, msize: msize)
        guard Int(header.size) == frame.count else { throw .badSize(header.size) }
        guard let type = MessageType(rawValue: header.type) else { throw .unknownType(header.type) }
        var r = WireReader(frame, offset: NineP.headerSize)
        let response: Response
        switch type {
        case .rversion: response = .version(msize: try r.u32(), version: try r.string())
        case .rauth: response = .auth(aqid: try r.qid())
        case .rattach: response = .attach(qid: try r.qid())
        case .rlerror: response = .lerror(ecode: try r.u32())
        case .rerror: response = .error(ename: try r.string(), errno: try r.u32())
        case .rflush: response = .flush
        case .rwalk:
            let count = Int(try r.u16())
            guard count <= NineP.maxWalkElements else { throw .tooManyWalkElements(count) }
            response = .walk(qids: QidList(encoded: try r.view(count: count * Qid.wireSize)))
        case .rlopen: response = .lopen(qid: try r.qid(), iounit: try r.u32())
        case .rlcreate: response = .lcreate(qid: try r.qid(), iounit: try r.u32())
        case .rread:
            let count = try r.u32()
            guard Int(count) == r.remaining else { throw .countMismatch }
            response = .read(data: try r.view(count: Int(count)))
        case .rwrite: response = .write(count: try r.u32())
        case .rclunk: response = .clunk
        case .rremove: response = .remove
        case .rstatfs:
            response = .statfs(StatfsFields(
                type: try r.u32(), blockSize: try r.u32(), blocks: try r.u64(), blocksFree: try r.u64(),
                blocksAvailable: try r.u64(), files: try r.u64(), filesFree: try r.u64(), fsid: try r.u64(),
                nameLength: try r.u32()))
        case .rgetattr:
            var a = Attributes()
            a.valid = try r.u64(); a.qid = try r.qid()
            a.mode = try r.u32(); a.uid = try r.u32(); a.gid = try r.u32()
            a.nlink = try r.u64(); a.rdev = try r.u64(); a.size = try r.u64()
            a.blockSize = try r.u64(); a.blocks = try r.u64()
            a.atimeSeconds = try r.u64(); a.atimeNanoseconds = try r.u64()
            a.mtimeSeconds = try r.u64(); a.mtimeNanoseconds = try r.u64()
            a.ctimeSeconds = try r.u64(); a.ctimeNanoseconds = try r.u64()
            a.btimeSeconds = try r.u64(); a.btimeNanoseconds = try r.u64()
            a.generation = try r.u64(); a.dataVersion = try r.u64()
            response = .getattr(a)
        case .rsetattr: response = .setattr
        case .rreaddir:
            let count = try r.u32()
            guard Int(count) == r.remaining else { throw .countMismatch }
            let entries = DirEntries(data: try r.view(count: Int(count)))
            try entries.validate()
            response = .readdir(entries: entries)
        case .rfsync: response = .fsync
        case .rlock: response = .lock(status: try r.u8())
        case .rgetlock:
            response = .getlock(GetlockFields(
                type: try r.u8(), start: try r.u64(), length: try r.u64(), processID: try r.u32(), clientID: try r.string()))
        case .rlink: response = .link
        case .rmkdir: response = .mkdir(qid: try r.qid())
        case .rsymlink: response = .symlink(qid: try r.qid())
        case .rmknod: response = .mknod(qid: try r.qid())
        case .rrename: response = .rename
        case .rrenameat: response = .renameat
        case .runlinkat: response = .unlinkat
        case .rreadlink: response = .readlink(target: try r.string())
        case .rxattrwalk: response = .xattrwalk(size: try r.u64())
        case .rxattrcreate: response = .xattrcreate
        case .rlocalproof: response = .localproof
        case .rlocalgrant: response = .localgrant(flags: try r.u32())
        case .rlocalrevoke:
            let count = Int(try r.u16())
            guard count <= NineP.maxRevokedFids else { throw .countMismatch }
            response = .localrevoke(fids: FidList(encoded: try r.view(count: count * 4)))
        default: throw .unknownType(header.type)
        }
        try r.expectEnd()
        return RMessage(tag: header.tag, response: response)
    }
}

extension Response {
    /// Encodes this reply as one frame at the writer's position; returns the frame length.
    @discardableResult
    public func encode(tag: UInt16, into w: inout WireWriter) throws(WireError) -> Int {
        try w.beginFrame(type, tag: tag)
        switch self {
        case let .version(msize, version): try w.u32(msize); try w.string(version)
        case let .auth(qid), let .attach(qid), let .mkdir(qid), let .symlink(qid), let .mknod(qid): try w.qid(qid)
        case let .lerror(ecode): try w.u32(ecode)
        case let .error(ename, errno): try w.string(ename); try w.u32(errno)
        case .flush, .clunk, .remove, .setattr, .fsync, .link, .rename, .renameat, .unlinkat, .xattrcreate, .localproof: break
        case let .walk(qids):
            try w.u16(UInt16(qids.count))
            for qid in qids { try w.qid(qid) }
        case let .lopen(qid, iounit), let .lcreate(qid, iounit): try w.qid(qid); try w.u32(iounit)
        case let .read(data): try w.u32(UInt32(data.count)); try w.bytes(data)
        case let .write(count): try w.u32(count)
        case let .statfs(s):
            try w.u32(s.type); try w.u32(s.blockSize); try w.u64(s.blocks); try w.u64(s.blocksFree)
            try w.u64(s.blocksAvailable); try w.u64(s.files); try w.u64(s.filesFree); try w.u64(s.fsid); try w.u32(s.nameLength)
        case let .getattr(a): try w.attributes(a)
        case let .readdir(entries): try w.u32(UInt32(entries.data.count)); try w.bytes(entries.data)
        case let .lock(status): try w.u8(status)
        case let .getlock(g):
            try w.u8(g.type); try w.u64(g.start); try w.u64(g.length); try w.u32(g.processID); try w.string(g.clientID)
        case let .readlink(target): try w.string(target)
        case let .xattrwalk(size): try w.u64(size)
        case let .localgrant(flags): try w.u32(flags)
        case let .localrevoke(fids):
            guard fids.count <= NineP.maxRevokedFids else { throw .countMismatch }
            try w.u16(UInt16(fids.count)); try w.bytes(fids.encoded)
        }
        return w.finishFrame()
    }
}

extension WireWriter {
    public mutating func attributes(_ a: Attributes) throws(WireError) {
        guard remaining >= Attributes.wireSize else { throw .noRoom }
        try u64(a.valid); try qid(a.qid); try u32(a.mode); try u32(a.uid); try u32(a.gid)
        try u64(a.nlink); try u64(a.rdev); try u64(a.size); try u64(a.blockSize); try u64(a.blocks)
        try u64(a.atimeSeconds); try u64(a.atimeNanoseconds); try u64(a.mtimeSeconds); try u64(a.mtimeNanoseconds)
        try u64(a.ctimeSeconds); try u64(a.ctimeNanoseconds); try u64(a.btimeSeconds); try u64(a.btimeNanoseconds)
        try u64(a.generation); try u64(a.dataVersion)
    }

    /// Encodes an Rlerror.
    @discardableResult
    public mutating func rlerror(tag: UInt16, errno: UInt32) throws(WireError) -> Int {
        try beginFrame(.rlerror, tag: tag)
        try u32(errno)
        return finishFrame()
    }

    /// Starts an Rread whose data the caller produces in place (e.g. with pread) in the
    /// returned region; call `finishRread(produced:)` with the bytes actually produced.
    public mutating func beginRread(tag: UInt16, maxCount: Int) throws(WireError) -> UnsafeMutableRawBufferPointer {
        try beginFrame(.rread, tag: tag)
        try u32(0)
        return try reserve(min(maxCount, remaining))
    }

    @discardableResult
    public mutating func finishRread(reserved: Int, produced: Int) -> Int {
        unreserve(reserved - produced)
        patchU32(UInt32(produced), at: frameStart + NineP.headerSize)
        return finishFrame()
    }

    /// Starts an Rwalk; append qids with `qid(_:)` then call `finishRwalk(count:)`.
    public mutating func beginRwalk(tag: UInt16) throws(WireError) {
        try beginFrame(.rwalk, tag: tag)
        try u16(0)
    }

    @discardableResult
    public mutating func finishRwalk(count: Int) -> Int {
        buffer.storeBytes(of: UInt16(count).littleEndian, toByteOffset: frameStart + NineP.headerSize, as: UInt16.self)
        return finishFrame()
    }
}
