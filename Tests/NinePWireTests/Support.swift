@testable import NinePWire

/// Owns the memory behind the `ByteView`s and frames a test builds, so that every view stays
/// valid until the arena is released (tests keep the arena in a stored property of the suite).
final class Arena {
    private var blocks: [UnsafeMutableRawBufferPointer] = []

    deinit {
        for block in blocks { block.deallocate() }
    }

    /// A stable, exactly sized copy of `bytes`.
    func bytes(_ bytes: some Collection<UInt8>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(mutableBytes(bytes))
    }

    func mutableBytes(_ bytes: some Collection<UInt8>) -> UnsafeMutableRawBufferPointer {
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(bytes.count, 1), alignment: 16)
        blocks.append(block)
        let region = UnsafeMutableRawBufferPointer(rebasing: block[0..<bytes.count])
        region.copyBytes(from: bytes)
        return region
    }

    /// An uninitialized-looking buffer filled with `fill` (a sentinel to spot stray writes).
    func buffer(_ count: Int, fill: UInt8 = 0xAA) -> UnsafeMutableRawBufferPointer {
        mutableBytes(repeatElement(fill, count: count))
    }

    func view(_ string: String) -> ByteView { ByteView(bytes(Array(string.utf8))) }
    func view(_ bytes: [UInt8]) -> ByteView { ByteView(self.bytes(bytes)) }

    /// Twalk names as the decoder would present them.
    func walkNames(_ names: [String]) -> WalkNames {
        var encoded: [UInt8] = []
        for name in names { encoded += le16(name.utf8.count) + Array(name.utf8) }
        return WalkNames(count: names.count, encoded: view(encoded))
    }

    func qidList(_ qids: [Qid]) -> QidList {
        QidList(encoded: view(qids.flatMap(qidBytes)))
    }

    func dirEntries(_ entries: [(qid: Qid, offset: UInt64, type: UInt8, name: String)]) -> DirEntries {
        var data: [UInt8] = []
        for e in entries {
            data += qidBytes(e.qid) + le64(e.offset) + [e.type] + le16(e.name.utf8.count) + Array(e.name.utf8)
        }
        return DirEntries(data: view(data))
    }
}

// MARK: - Byte helpers

/// Parses hex digits, ignoring spaces; the golden vectors are written one field per string.
func hex(_ parts: String...) -> [UInt8] {
    let digits = parts.joined().filter { !$0.isWhitespace }
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    var out: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        out.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return out
}

func hexString(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> ($0 * 8)) } }
func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> ($0 * 8)) } }
func qidBytes(_ q: Qid) -> [UInt8] { [q.type] + le32(q.version) + le64(q.path) }

/// Sets the size field of a frame (first four bytes) to `size`, or to the frame's length.
func withSize(_ frame: [UInt8], _ size: UInt32? = nil) -> [UInt8] {
    var f = frame
    let s = le32(size ?? UInt32(frame.count))
    for i in 0..<Swift.min(4, f.count) { f[i] = s[i] }
    return f
}

// MARK: - Encode / decode helpers

/// Runs an encoder into a fresh 256 KiB buffer and returns what it wrote.
func encoded(capacity: Int = 1 << 18, _ body: (inout WireWriter) throws(WireError) -> Int) throws(WireError) -> [UInt8] {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
    defer { buffer.deallocate() }
    var writer = WireWriter(buffer)
    let length = try body(&writer)
    precondition(length == writer.offset, "returned length \(length) != written \(writer.offset)")
    return Array(writer.written)
}

func encoded(_ request: Request, tag: UInt16) throws(WireError) -> [UInt8] {
    try encoded { w throws(WireError) in try request.encode(tag: tag, into: &w) }
}

func encoded(_ response: Response, tag: UInt16) throws(WireError) -> [UInt8] {
    try encoded { w throws(WireError) in try response.encode(tag: tag, into: &w) }
}

let bigMsize: UInt32 = 1 << 20

/// The error a T decode gives, or nil when it decodes.
func tError(_ frame: UnsafeRawBufferPointer, msize: UInt32 = bigMsize) -> WireError? {
    do {
        _ = try TMessage.decode(frame, msize: msize)
        return nil
    } catch {
        return error
    }
}

func rError(_ frame: UnsafeRawBufferPointer, msize: UInt32 = bigMsize) -> WireError? {
    do {
        _ = try RMessage.decode(frame, msize: msize)
        return nil
    } catch {
        return error
    }
}

func headerError(_ frame: UnsafeRawBufferPointer, msize: UInt32 = bigMsize) -> WireError? {
    do {
        _ = try FrameHeader.decode(frame, msize: msize)
        return nil
    } catch {
        return error
    }
}

/// Re-encodes a decoded message (for canonical-encoding checks).
func reencoded(_ message: TMessage) throws(WireError) -> [UInt8] { try encoded(message.request, tag: message.tag) }
func reencoded(_ message: RMessage) throws(WireError) -> [UInt8] { try encoded(message.response, tag: message.tag) }

// MARK: - Message classification

extension MessageType {
    var isRequest: Bool { rawValue % 2 == 0 }
    /// T-types the server can receive (Tlerror is never sent, it has no Request case).
    static let requestTypes = allCases.filter { $0.isRequest && $0 != .tlerror }
    static let responseTypes = allCases.filter { !$0.isRequest }
}

// MARK: - One sample of every message

/// A sample of every Request, with values chosen to catch byte-order and width mistakes
/// (high bits set, distinct bytes, empty and non-ASCII strings).
func sampleRequest(_ type: MessageType, _ a: Arena) -> Request? {
    switch type {
    case .tversion: .version(msize: 0x0001_0000, version: a.view("9P2000.L"))
    case .tauth: .auth(afid: 0xA0A0_0001, uname: a.view("nobody"), aname: a.view(""), nuname: NineP.noUid)
    case .tattach: .attach(fid: 1, afid: NineP.noFid, uname: a.view("root"), aname: a.view("/export"), nuname: 0)
    case .tflush: .flush(oldtag: 0xBEEF)
    case .twalk: .walk(fid: 1, newfid: 2, names: a.walkNames(["usr", "", "ünïcode", "a b"]))
    case .tlopen: .lopen(fid: 7, flags: OpenFlags.readWrite | OpenFlags.truncate | OpenFlags.noFollow)
    case .tlcreate:
        .lcreate(fid: 7, name: a.view("new.txt"), flags: OpenFlags.create | OpenFlags.writeOnly, mode: 0o100644, gid: 100)
    case .tread: .read(fid: 7, offset: 0xFEDC_BA98_7654_3210, count: 0x8000)
    case .twrite: .write(fid: 7, offset: 1 << 40, data: a.view([0, 1, 2, 0xFF, 0x80, 0x7F]))
    case .tclunk: .clunk(fid: 0xFFFF_FFFE)
    case .tremove: .remove(fid: 9)
    case .tstatfs: .statfs(fid: 3)
    case .tgetattr: .getattr(fid: 3, mask: GetattrMask.all)
    case .tsetattr:
        .setattr(fid: 3, SetattrFields(
            valid: SetattrValid.mode | SetattrValid.size | SetattrValid.mtimeSet, mode: 0o600, uid: 1000, gid: 1001,
            size: 1 << 33, atimeSeconds: 1, atimeNanoseconds: 999_999_999,
            mtimeSeconds: 0x0102_0304_0506_0708, mtimeNanoseconds: 2))
    case .treaddir: .readdir(fid: 4, offset: 0x7FFF_FFFF_FFFF_FFFF, count: 8168)
    case .tfsync: .fsync(fid: 4, datasync: 1)
    case .tlock:
        .lock(fid: 4, LockFields(
            type: LockType.write, flags: LockFlags.block, start: 100, length: 0, processID: 4242,
            clientID: a.view("client-host")))
    case .tgetlock:
        .getlock(fid: 4, GetlockFields(type: LockType.read, start: 0, length: .max, processID: 1, clientID: a.view("h")))
    case .tlink: .link(dfid: 5, fid: 6, name: a.view("hardlink"))
    case .tmkdir: .mkdir(dfid: 5, name: a.view("dir"), mode: 0o755, gid: 0)
    case .tsymlink: .symlink(fid: 5, name: a.view("sym"), target: a.view("../target/path"), gid: 7)
    case .tmknod: .mknod(dfid: 5, name: a.view("fifo"), mode: 0o010644, major: 8, minor: 1, gid: 3)
    case .trename: .rename(fid: 6, dfid: 5, name: a.view("renamed"))
    case .trenameat: .renameat(olddirfid: 5, oldname: a.view("old"), newdirfid: 8, newname: a.view("new"))
    case .tunlinkat: .unlinkat(dirfid: 5, name: a.view("gone"), flags: UnlinkFlags.removeDir)
    case .treadlink: .readlink(fid: 6)
    case .txattrwalk: .xattrwalk(fid: 6, newfid: 10, name: a.view("user.comment"))
    case .txattrcreate: .xattrcreate(fid: 10, name: a.view("security.selinux"), size: 42, flags: 1)
    case .tlocalproof: .localproof(nonce: LocalNonce(a.view((0..<32).map { UInt8(truncatingIfNeeded: 0xE0 + $0 * 7) })))
    case .tlocalgrant: .localgrant(fid: 0x8765_4321)
    case .tlocalrevoke: .localrevoke
    case .rlocalproof, .rlocalgrant, .rlocalrevoke, .tlerror, .rlerror, .rerror, .rstatfs, .rlopen, .rlcreate, .rsymlink, .rmknod, .rrename, .rreadlink, .rgetattr,
        .rsetattr, .rxattrwalk, .rxattrcreate, .rreaddir, .rfsync, .rlock, .rgetlock, .rlink, .rmkdir, .rrenameat,
        .runlinkat, .rversion, .rauth, .rattach, .rflush, .rwalk, .rread, .rwrite, .rclunk, .rremove:
        nil
    }
}

func sampleAttributes() -> Attributes {
    var a = Attributes()
    a.valid = GetattrMask.all
    a.qid = Qid(type: Qid.typeFile, version: 0x0102_0304, path: 0x1122_3344_5566_7788)
    a.mode = 0o100644
    a.uid = 1000
    a.gid = 1001
    a.nlink = 2
    a.rdev = 0x0803
    a.size = 1 << 35
    a.blockSize = 4096
    a.blocks = 0x0010_0000
    a.atimeSeconds = 1_700_000_000
    a.atimeNanoseconds = 123_456_789
    a.mtimeSeconds = 1_700_000_001
    a.mtimeNanoseconds = 987_654_321
    a.ctimeSeconds = 1_700_000_002
    a.ctimeNanoseconds = 5
    a.btimeSeconds = 1_600_000_000
    a.btimeNanoseconds = 6
    a.generation = 0xDEAD_BEEF
    a.dataVersion = .max
    return a
}

func sampleResponse(_ type: MessageType, _ a: Arena) -> Response? {
    let dir = Qid(type: Qid.typeDir, version: 0, path: 1)
    let file = Qid(type: Qid.typeFile, version: 0xCAFE_BABE, path: 0x8000_0000_0000_0001)
    let link = Qid(type: Qid.typeSymlink, version: 3, path: 77)
    switch type {
    case .rversion: return .version(msize: 8192, version: a.view("9P2000.L"))
    case .rauth: return .auth(aqid: Qid(type: Qid.typeAuth, version: 1, path: 2))
    case .rattach: return .attach(qid: dir)
    case .rlerror: return .lerror(ecode: LinuxErrno.ENOENT)
    case .rerror: return .error(ename: a.view("file not found"), errno: LinuxErrno.ENOENT)
    case .rflush: return .flush
    case .rwalk: return .walk(qids: a.qidList([dir, file, link]))
    case .rlopen: return .lopen(qid: file, iounit: 0)
    case .rlcreate: return .lcreate(qid: file, iounit: 65_536)
    case .rread: return .read(data: a.view(Array(0...255)))
    case .rwrite: return .write(count: 0xFFFF_FFFF)
    case .rclunk: return .clunk
    case .rremove: return .remove
    case .rstatfs:
        return .statfs(StatfsFields(
            type: 0x0102_1997, blockSize: 4096, blocks: 1 << 40, blocksFree: 1 << 39, blocksAvailable: (1 << 39) - 1,
            files: 1_000_000, filesFree: 999_999, fsid: 0xFEDC_BA98_7654_3210, nameLength: 255))
    case .rgetattr: return .getattr(sampleAttributes())
    case .rsetattr: return .setattr
    case .rreaddir:
        return .readdir(entries: a.dirEntries([
            (dir, 1, 4, "."), (dir, 2, 4, ".."), (file, 3, 8, "file.txt"), (link, .max, 10, "línk"),
        ]))
    case .rfsync: return .fsync
    case .rlock: return .lock(status: LockStatus.blocked)
    case .rgetlock:
        return .getlock(GetlockFields(type: LockType.unlock, start: 10, length: 20, processID: 0xFFFF_FFFF, clientID: a.view("")))
    case .rlink: return .link
    case .rmkdir: return .mkdir(qid: dir)
    case .rsymlink: return .symlink(qid: link)
    case .rmknod: return .mknod(qid: file)
    case .rrename: return .rename
    case .rrenameat: return .renameat
    case .runlinkat: return .unlinkat
    case .rreadlink: return .readlink(target: a.view("/usr/lib/../share"))
    case .rxattrwalk: return .xattrwalk(size: 1 << 16)
    case .rxattrcreate: return .xattrcreate
    case .rlocalproof: return .localproof
    case .rlocalgrant: return .localgrant(flags: OpenFlags.readWrite | OpenFlags.append)
    case .rlocalrevoke: return .localrevoke(fids: FidList(encoded: a.view([1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF, 7, 6, 5, 4])))
    case .tlocalproof, .tlocalgrant, .tlocalrevoke, .tlerror, .tstatfs, .tlopen, .tlcreate, .tsymlink, .tmknod, .trename, .treadlink, .tgetattr, .tsetattr,
        .txattrwalk, .txattrcreate, .treaddir, .tfsync, .tlock, .tgetlock, .tlink, .tmkdir, .trenameat, .tunlinkat,
        .tversion, .tauth, .tattach, .tflush, .twalk, .tread, .twrite, .tclunk, .tremove:
        return nil
    }
}

/// Encoded frames of every sample, for the malformed-input and random tests.
func allSampleFrames(_ a: Arena) throws(WireError) -> [(type: MessageType, frame: [UInt8])] {
    var frames: [(type: MessageType, frame: [UInt8])] = []
    for type in MessageType.requestTypes {
        frames.append((type, try encoded(sampleRequest(type, a)!, tag: 0x1234)))
    }
    for type in MessageType.responseTypes {
        frames.append((type, try encoded(sampleResponse(type, a)!, tag: 0x1234)))
    }
    return frames
}
