@testable import NinePWire
import Testing

/// Each hand-written vector in `Golden` must be exactly what the encoder produces, and must
/// decode to the expected fields.
@Suite("Golden byte vectors")
struct GoldenVectorTests {
    let a = Arena()

    func checkT(_ vector: [UInt8], _ expected: TMessage, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = try encoded(expected.request, tag: expected.tag)
        #expect(hexString(bytes) == hexString(vector), "encode", sourceLocation: sourceLocation)
        let frame = a.bytes(vector)
        let header = try FrameHeader.decode(frame, msize: bigMsize)
        #expect(header == FrameHeader(size: UInt32(vector.count), type: expected.request.type.rawValue, tag: expected.tag),
                sourceLocation: sourceLocation)
        let decoded = try TMessage.decode(frame, msize: bigMsize)
        #expect(decoded == expected, "decode", sourceLocation: sourceLocation)
    }

    func checkR(_ vector: [UInt8], _ expected: RMessage, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = try encoded(expected.response, tag: expected.tag)
        #expect(hexString(bytes) == hexString(vector), "encode", sourceLocation: sourceLocation)
        let frame = a.bytes(vector)
        let header = try FrameHeader.decode(frame, msize: bigMsize)
        #expect(header == FrameHeader(size: UInt32(vector.count), type: expected.response.type.rawValue, tag: expected.tag),
                sourceLocation: sourceLocation)
        let decoded = try RMessage.decode(frame, msize: bigMsize)
        #expect(decoded == expected, "decode", sourceLocation: sourceLocation)
    }

    @Test func tversion() throws {
        try checkT(Golden.tversion, TMessage(tag: NineP.noTag, request: .version(msize: 8192, version: a.view("9P2000.L"))))
        guard case let .version(_, version) = try TMessage.decode(a.bytes(Golden.tversion), msize: 8192).request else {
            Issue.record("not a Tversion")
            return
        }
        #expect(version.equals("9P2000.L"))
    }

    @Test func rversion() throws {
        try checkR(Golden.rversion, RMessage(tag: NineP.noTag, response: .version(msize: 65536, version: a.view("9P2000.L"))))
    }

    @Test func tattach() throws {
        try checkT(Golden.tattach, TMessage(tag: 1, request: .attach(
            fid: 0, afid: NineP.noFid, uname: a.view("root"), aname: a.view("/srv"), nuname: 1000)))
    }

    @Test func rattach() throws {
        try checkR(Golden.rattach, RMessage(tag: 1, response: .attach(qid: Qid(type: Qid.typeDir, version: 0, path: 1))))
    }

    @Test func rlerror() throws {
        try checkR(Golden.rlerror, RMessage(tag: 5, response: .lerror(ecode: LinuxErrno.ENOENT)))
    }

    /// 9P2000.u's Rerror, as servers that do not speak 9P2000.L's Rlerror answer: the
    /// message and the errno both come through.
    @Test func rerrorOfOtherServers() throws {
        try checkR(Golden.rerror, RMessage(tag: 5, response: .error(ename: a.view("no such file"), errno: LinuxErrno.ENOENT)))
        // Without its errno (plain 9P2000) the frame is short of a field.
        let plain = Array(Golden.rerror.dropLast(4))
        var resized = plain
        resized.replaceSubrange(0..<4, with: [UInt8(plain.count), 0, 0, 0])
        #expect(throws: WireError.truncated) { try RMessage.decode(a.bytes(resized), msize: bigMsize) }
        // Never a request.
        #expect(throws: WireError.unknownType(107)) { try TMessage.decode(a.bytes(Golden.rerror), msize: bigMsize) }
    }

    @Test func twalkWithTwoNames() throws {
        try checkT(Golden.twalk, TMessage(tag: 2, request: .walk(fid: 0, newfid: 1, names: a.walkNames(["usr", "lib"]))))
        guard case let .walk(fid, newfid, names) = try TMessage.decode(a.bytes(Golden.twalk), msize: 8192).request else {
            Issue.record("not a Twalk")
            return
        }
        #expect(fid == 0 && newfid == 1 && names.count == 2)
        #expect(names.map { $0.makeString() } == ["usr", "lib"])
    }

    @Test func rwalkWithQids() throws {
        let qids = [Qid(type: Qid.typeDir, version: 0, path: 0x10), Qid(type: Qid.typeFile, version: 7, path: 0x0102_0304_0506_0708)]
        try checkR(Golden.rwalk, RMessage(tag: 2, response: .walk(qids: a.qidList(qids))))
        guard case let .walk(decoded) = try RMessage.decode(a.bytes(Golden.rwalk), msize: 8192).response else {
            Issue.record("not an Rwalk")
            return
        }
        #expect(Array(decoded) == qids)
        #expect(decoded[1].path == 0x0102_0304_0506_0708)
    }

    @Test func tlopen() throws {
        try checkT(Golden.tlopen, TMessage(tag: 3, request: .lopen(fid: 1, flags: OpenFlags.readWrite | OpenFlags.truncate)))
    }

    @Test func rlopen() throws {
        try checkR(Golden.rlopen, RMessage(tag: 3, response: .lopen(qid: Qid(type: Qid.typeFile, version: 1, path: 42), iounit: 0)))
    }

    @Test func tread() throws {
        try checkT(Golden.tread, TMessage(tag: 4, request: .read(fid: 1, offset: 4096, count: 4096)))
    }

    @Test func rreadWithData() throws {
        try checkR(Golden.rread, RMessage(tag: 4, response: .read(data: a.view("hello"))))
    }

    @Test func twrite() throws {
        try checkT(Golden.twrite, TMessage(tag: 6, request: .write(fid: 1, offset: 10, data: a.view("abc"))))
    }

    @Test func rwrite() throws {
        try checkR(Golden.rwrite, RMessage(tag: 6, response: .write(count: 3)))
    }

    @Test func tgetattr() throws {
        try checkT(Golden.tgetattr, TMessage(tag: 7, request: .getattr(fid: 1, mask: GetattrMask.basic)))
    }

    @Test func rgetattr() throws {
        var attr = Attributes()
        attr.valid = GetattrMask.basic
        attr.qid = Qid(type: Qid.typeFile, version: 1, path: 42)
        attr.mode = 0o100644
        attr.uid = 1000
        attr.gid = 100
        attr.nlink = 1
        attr.size = 5
        attr.blockSize = 4096
        attr.blocks = 8
        attr.atimeSeconds = 1_700_000_000
        attr.atimeNanoseconds = 1
        attr.mtimeSeconds = 2
        attr.mtimeNanoseconds = 3
        attr.ctimeSeconds = 4
        attr.ctimeNanoseconds = 5
        try checkR(Golden.rgetattr, RMessage(tag: 7, response: .getattr(attr)))
        #expect(Golden.rgetattr.count == NineP.headerSize + Attributes.wireSize)
    }

    @Test func treaddir() throws {
        try checkT(Golden.treaddir, TMessage(tag: 8, request: .readdir(fid: 2, offset: 0, count: 8168)))
    }

    @Test func rreaddirWithEntries() throws {
        let dot = Qid(type: Qid.typeDir, version: 0, path: 1)
        let file = Qid(type: Qid.typeFile, version: 0, path: 2)
        try checkR(Golden.rreaddir, RMessage(tag: 8, response: .readdir(entries: a.dirEntries([(dot, 1, 4, "."), (file, 2, 8, "a")]))))
        guard case let .readdir(entries) = try RMessage.decode(a.bytes(Golden.rreaddir), msize: 8192).response else {
            Issue.record("not an Rreaddir")
            return
        }
        let list = Array(entries)
        #expect(list.count == 2)
        #expect(list.map(\.qid) == [dot, file])
        #expect(list.map(\.offset) == [1, 2])
        #expect(list.map(\.type) == [4, 8])
        #expect(list.map { $0.name.makeString() } == [".", "a"])
    }

    @Test func tlock() throws {
        try checkT(Golden.tlock, TMessage(tag: 9, request: .lock(fid: 1, LockFields(
            type: LockType.write, flags: LockFlags.block, start: 0, length: 0, processID: 1234, clientID: a.view("host")))))
    }

    @Test func rlock() throws {
        try checkR(Golden.rlock, RMessage(tag: 9, response: .lock(status: LockStatus.success)))
    }

    @Test func tsetattr() throws {
        try checkT(Golden.tsetattr, TMessage(tag: 10, request: .setattr(fid: 1, SetattrFields(
            valid: SetattrValid.mode | SetattrValid.size, mode: 0o644, size: 100))))
    }

    @Test func tclunkAndRclunk() throws {
        try checkT(Golden.tclunk, TMessage(tag: 11, request: .clunk(fid: 1)))
        try checkR(Golden.rclunk, RMessage(tag: 11, response: .clunk))
    }

    @Test func tflushAndRflush() throws {
        try checkT(Golden.tflush, TMessage(tag: 12, request: .flush(oldtag: 4)))
        try checkR(Golden.rflush, RMessage(tag: 12, response: .flush))
    }

    @Test func tmkdir() throws {
        try checkT(Golden.tmkdir, TMessage(tag: 13, request: .mkdir(dfid: 1, name: a.view("d"), mode: 0o755, gid: 100)))
    }

    @Test func tstatfsAndRstatfs() throws {
        try checkT(Golden.tstatfs, TMessage(tag: 14, request: .statfs(fid: 1)))
        try checkR(Golden.rstatfs, RMessage(tag: 14, response: .statfs(StatfsFields(
            type: 0x0102_1997, blockSize: 4096, blocks: 1000, blocksFree: 500, blocksAvailable: 400,
            files: 100, filesFree: 50, fsid: 7, nameLength: 255))))
    }

    @Test func tunlinkat() throws {
        try checkT(Golden.tunlinkat, TMessage(tag: 15, request: .unlinkat(dirfid: 1, name: a.view("x"), flags: UnlinkFlags.removeDir)))
    }

    @Test func tlcreate() throws {
        try checkT(Golden.tlcreate, TMessage(tag: 16, request: .lcreate(
            fid: 3, name: a.view("f.txt"), flags: OpenFlags.writeOnly | OpenFlags.create | OpenFlags.largeFile,
            mode: 0o100644, gid: 0)))
    }

    @Test func rreadlink() throws {
        try checkR(Golden.rreadlink, RMessage(tag: 17, response: .readlink(target: a.view("/tmp/"))))
    }

    /// The message type numbers against include/net/9p/9p.h.
    @Test func typeNumbersMatchTheKernel() {
        let expected: [(MessageType, UInt8)] = [
            (.tlerror, 6), (.rlerror, 7), (.tstatfs, 8), (.tlopen, 12), (.tlcreate, 14), (.tsymlink, 16), (.tmknod, 18),
            (.trename, 20), (.treadlink, 22), (.tgetattr, 24), (.tsetattr, 26), (.txattrwalk, 30), (.txattrcreate, 32),
            (.treaddir, 40), (.tfsync, 50), (.tlock, 52), (.tgetlock, 54), (.tlink, 70), (.tmkdir, 72), (.trenameat, 74),
            (.tunlinkat, 76), (.tversion, 100), (.tauth, 102), (.tattach, 104), (.tflush, 108), (.twalk, 110),
            (.tread, 116), (.twrite, 118), (.tclunk, 120), (.tremove, 122),
        ]
        for (type, raw) in expected {
            #expect(type.rawValue == raw, "\(type)")
            #expect(MessageType(rawValue: raw + 1) != nil, "R of \(type)")
        }
        #expect(MessageType.allCases.count == 65)  // 29 T/R pairs, 9P2000.u's Rerror, 3 localio pairs
        #expect(MessageType.rerror.rawValue == 107)
    }
}
