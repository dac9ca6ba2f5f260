import NinePFuse
import NinePWire
import Testing

@Suite("FUSE codec: fixed structs")
struct FuseStructTests {
    func roundTrip<T: FuseStruct>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = KernelBytes.struct_(value)
        #expect(bytes.count == T.wireSize, "\(T.self) is \(bytes.count) bytes", sourceLocation: sourceLocation)
        let back = try bytes.withUnsafeBytes { raw in try T.decode(raw) }
        #expect(back == value, sourceLocation: sourceLocation)
        // Every shorter input is refused, never trapped on.
        for cut in 0..<bytes.count {
            #expect(throws: FuseCodecError.self, sourceLocation: sourceLocation) {
                try Array(bytes[0..<cut]).withUnsafeBytes { raw in _ = try T.decode(raw) }
            }
        }
        // And a longer one too (decode takes exactly one struct).
        #expect(throws: FuseCodecError.trailingBytes(opcode: 0, count: 1), sourceLocation: sourceLocation) {
            try (bytes + [0]).withUnsafeBytes { raw in _ = try T.decode(raw) }
        }
    }

    @Test func sizesMatchTheKernel() {
        // From include/uapi/linux/fuse.h.
        #expect(FuseInHeader.wireSize == 40)
        #expect(FuseOutHeader.wireSize == 16)
        #expect(FuseAttr.wireSize == 88)
        #expect(FuseEntryOut.wireSize == 128)
        #expect(FuseAttrOut.wireSize == 104)
        #expect(FuseSetattrIn.wireSize == 88)
        #expect(FuseInitOut.wireSize == 64)
        #expect(FuseStatfsOut.wireSize == 80)
        #expect(FuseLockIn.wireSize == 48)
        #expect(FuseReadIn.wireSize == 40)
        #expect(FuseWriteIn.wireSize == 40)
    }

    @Test func roundTrips() throws {
        try roundTrip(FuseInHeader(length: 60, opcode: .lookup, unique: 9, nodeID: 1, uid: 1000, gid: 100, pid: 77, extensionUnits: 0))
        try roundTrip(FuseOutHeader(length: 16, error: -2, unique: 9))
        var attr = FuseAttr()
        attr.ino = 0x1122334455667788; attr.size = 4096; attr.blocks = 8; attr.atime = 1; attr.mtime = 2; attr.ctime = 3
        attr.atimeNanoseconds = 4; attr.mtimeNanoseconds = 5; attr.ctimeNanoseconds = 6; attr.mode = 0o100644
        attr.nlink = 1; attr.uid = 1000; attr.gid = 100; attr.rdev = 0; attr.blockSize = 4096
        try roundTrip(attr)
        var entry = FuseEntryOut()
        entry.nodeID = 5; entry.generation = 1; entry.entryValidSeconds = 1; entry.attrValidNanoseconds = 500; entry.attr = attr
        try roundTrip(entry)
        var attrOut = FuseAttrOut()
        attrOut.attrValidSeconds = 1; attrOut.attr = attr
        try roundTrip(attrOut)
        var setattr = FuseSetattrIn()
        setattr.valid = [.size, .mode, .mtimeNow]; setattr.size = 10; setattr.mode = 0o600; setattr.uid = 3; setattr.gid = 4
        try roundTrip(setattr)
        var initOut = FuseInitOut()
        initOut.flags = [.maxPages, .bigWrites, .initExt, .passthrough]; initOut.maxWrite = 1 << 20; initOut.maxPages = 256
        try roundTrip(initOut)
        var statfs = FuseStatfsOut()
        statfs.blocks = 100; statfs.blocksFree = 50; statfs.blocksAvailable = 40; statfs.files = 9; statfs.filesFree = 8
        statfs.blockSize = 4096; statfs.nameLength = 255; statfs.fragmentSize = 4096
        try roundTrip(statfs)
        try roundTrip(FuseGetattrIn(flags: FuseGetattrIn.flagFH, fh: 3))
        try roundTrip(FuseOpenIn(flags: 0o2, openFlags: 0))
        try roundTrip(FuseCreateIn(flags: 0o101, mode: 0o100644, umask: 0o022))
        try roundTrip(FuseMknodIn(mode: 0o10644, rdev: 0, umask: 0o022))
        try roundTrip(FuseMkdirIn(mode: 0o755, umask: 0o022))
        try roundTrip(FuseReadIn(fh: 1, offset: 4096, size: 131072, flags: 0o2))
        try roundTrip(FuseWriteIn(fh: 1, offset: 0, size: 5))
        try roundTrip(FuseReleaseIn(fh: 1, flags: 2, releaseFlags: 1, lockOwner: 99))
        try roundTrip(FuseFlushIn(fh: 1, lockOwner: 99))
        try roundTrip(FuseFsyncIn(fh: 1, flags: 1))
        try roundTrip(FuseLockIn(fh: 1, owner: 2, lock: FuseFileLock(start: 0, end: .max, type: 1, pid: 77), lkFlags: 0))
        try roundTrip(FuseFallocateIn(fh: 1, offset: 0, length: 1 << 20, mode: 1))
        try roundTrip(FuseForgetOne(nodeID: 5, lookups: 2))
        try roundTrip(FuseOpenOut(fh: 7, flags: [.keepCache], backingID: 0))
        try roundTrip(FuseWriteOut(size: 5))
        try roundTrip(FuseGetxattrOut(size: 12))
        try roundTrip(FuseLockOut(lock: FuseFileLock(start: 1, end: 2, type: 2, pid: 0)))
    }

    @Test func initInFromOldAndNewKernels() throws {
        // A 7.45 kernel: 64 bytes, flags2 present because FUSE_INIT_EXT is set.
        let modern = FuseInitIn(major: 7, minor: 45, maxReadahead: 131072, flags: [.asyncRead, .maxPages, .initExt, .passthrough])
        let bytes = KernelBytes.struct_(modern)
        #expect(bytes.count == 64)
        let back = try bytes.withUnsafeBytes { raw in try FuseInitIn.decode(raw) }
        #expect(back == modern)
        // A kernel before 7.36 sends 16 bytes and no second word.
        let old = KernelBytes.u32(7) + KernelBytes.u32(31) + KernelBytes.u32(65536) + KernelBytes.u32(1 << 22)
        let decoded = try old.withUnsafeBytes { raw in try FuseInitIn.decode(raw) }
        #expect(decoded == FuseInitIn(major: 7, minor: 31, maxReadahead: 65536, flags: [.maxPages]))
    }
}

@Suite("FUSE codec: requests")
struct FuseRequestTests {
    @Test func lookupCarriesItsName() throws {
        let (header, request, names) = try decodeRequest(KernelBytes.request(.lookup, unique: 11, nodeID: 1, body: KernelBytes.name("hello.txt")))
        #expect(header.opcode == .lookup && header.unique == 11 && header.nodeID == 1 && header.uid == 1000 && header.gid == 100 && header.pid == 42)
        guard case .lookup = request else { Issue.record("decoded \(request)"); return }
        #expect(names == ["hello.txt"])
    }

    @Test func writeIsAViewOfItsData() throws {
        let body = KernelBytes.struct_(FuseWriteIn(fh: 3, offset: 8, size: 5)) + Array("hello".utf8)
        let (_, request, names) = try decodeRequest(KernelBytes.request(.write, body: body))
        guard case let .write(fields, _) = request else { Issue.record("decoded \(request)"); return }
        #expect(fields.fh == 3 && fields.offset == 8 && fields.size == 5)
        #expect(names == ["hello"])
        // A size that disagrees with the payload is refused.
        let lying = KernelBytes.struct_(FuseWriteIn(fh: 3, offset: 8, size: 6)) + Array("hello".utf8)
        #expect(throws: FuseCodecError.sizeMismatch(opcode: FuseOpcode.write.rawValue, declared: 6, present: 5)) {
            _ = try decodeRequest(KernelBytes.request(.write, body: lying))
        }
    }

    @Test func twoNameRequests() throws {
        let rename = KernelBytes.u64(9) + KernelBytes.name("a") + KernelBytes.name("bb")
        let (_, r1, n1) = try decodeRequest(KernelBytes.request(.rename, body: rename))
        #expect(r1 == r1)
        guard case let .rename(newParent, _, _) = r1 else { Issue.record("decoded \(r1)"); return }
        #expect(newParent == 9 && n1 == ["a", "bb"])
        let rename2 = KernelBytes.u64(9) + KernelBytes.u32(1) + KernelBytes.u32(0) + KernelBytes.name("a") + KernelBytes.name("bb")
        let (_, r2, n2) = try decodeRequest(KernelBytes.request(.rename2, body: rename2))
        guard case let .rename2(_, flags, _, _) = r2 else { Issue.record("decoded \(r2)"); return }
        #expect(flags == 1 && n2 == ["a", "bb"])
        let (_, r3, n3) = try decodeRequest(KernelBytes.request(.symlink, body: KernelBytes.name("link") + KernelBytes.name("../target")))
        guard case .symlink = r3 else { Issue.record("decoded \(r3)"); return }
        #expect(n3 == ["link", "../target"])
    }

    @Test func namedCreations() throws {
        let (_, mkdir, n1) = try decodeRequest(KernelBytes.request(.mkdir, body: KernelBytes.struct_(FuseMkdirIn(mode: 0o755, umask: 0o22)) + KernelBytes.name("d")))
        #expect(mkdir == .mkdir(FuseMkdirIn(mode: 0o755, umask: 0o22), name: ByteView(static: "d")))
        #expect(n1 == ["d"])
        let (_, create, n2) = try decodeRequest(KernelBytes.request(.create, body: KernelBytes.struct_(FuseCreateIn(flags: 0o101, mode: 0o100644, umask: 0o22)) + KernelBytes.name("f")))
        guard case let .create(fields, _) = create else { Issue.record("decoded \(create)"); return }
        #expect(fields.mode == 0o100644 && n2 == ["f"])
        let (_, link, n3) = try decodeRequest(KernelBytes.request(.link, body: KernelBytes.u64(12) + KernelBytes.name("hard")))
        guard case let .link(old, _) = link else { Issue.record("decoded \(link)"); return }
        #expect(old == 12 && n3 == ["hard"])
    }

    @Test func batchForgetReadsInPlace() throws {
        let body = KernelBytes.u32(2) + KernelBytes.u32(0) + KernelBytes.struct_(FuseForgetOne(nodeID: 5, lookups: 1)) + KernelBytes.struct_(FuseForgetOne(nodeID: 6, lookups: 3))
        let (_, _, names) = try decodeRequest(KernelBytes.request(.batchForget, body: body))
        #expect(names == ["5:1", "6:3"])
        // A count larger than the entries present.
        let short = KernelBytes.u32(3) + Array(body[4...])
        #expect(throws: FuseCodecError.self) { _ = try decodeRequest(KernelBytes.request(.batchForget, body: short)) }
    }

    @Test func xattrLayoutsFollowTheNegotiation() throws {
        let compat = KernelBytes.u32(3) + KernelBytes.u32(1) + KernelBytes.name("user.k") + Array("val".utf8)
        let (_, r1, n1) = try decodeRequest(KernelBytes.request(.setxattr, body: compat))
        #expect(r1 == .setxattr(FuseSetxattrIn(size: 3, flags: 1), name: ByteView(static: "user.k"), value: ByteView(static: "val")))
        #expect(n1 == ["user.k", "val"])
        let extended = KernelBytes.u32(3) + KernelBytes.u32(1) + KernelBytes.u32(1) + KernelBytes.u32(0) + KernelBytes.name("user.k") + Array("val".utf8)
        let (_, r2, _) = try decodeRequest(KernelBytes.request(.setxattr, body: extended), layout: .init(setxattrExtended: true))
        #expect(r2 == .setxattr(FuseSetxattrIn(size: 3, flags: 1, setxattrFlags: 1), name: ByteView(static: "user.k"), value: ByteView(static: "val")))
        let (_, r3, _) = try decodeRequest(KernelBytes.request(.getxattr, body: KernelBytes.u32(0) + KernelBytes.u32(0) + KernelBytes.name("user.k")))
        #expect(r3 == .getxattr(size: 0, name: ByteView(static: "user.k")))
        let (_, r4, _) = try decodeRequest(KernelBytes.request(.listxattr, body: KernelBytes.u32(4096) + KernelBytes.u32(0)))
        #expect(r4 == .listxattr(size: 4096))
    }

    @Test func bodilessAndSmallRequests() throws {
        #expect(try decodeRequest(KernelBytes.request(.statfs)).1 == .statfs)
        #expect(try decodeRequest(KernelBytes.request(.destroy)).1 == .destroy)
        #expect(try decodeRequest(KernelBytes.request(.readlink)).1 == .readlink)
        #expect(try decodeRequest(KernelBytes.request(.forget, body: KernelBytes.u64(3))).1 == .forget(lookups: 3))
        #expect(try decodeRequest(KernelBytes.request(.interrupt, body: KernelBytes.u64(77))).1 == .interrupt(unique: 77))
        #expect(try decodeRequest(KernelBytes.request(.access, body: KernelBytes.u32(4) + KernelBytes.u32(0))).1 == .access(mask: 4))
        #expect(try decodeRequest(KernelBytes.request(FuseOpcode(rawValue: 39))).1 == .unsupported(.ioctl))
    }

    /// Every request cut short anywhere is refused with an error, never trapped on.
    @Test func truncatedRequestsAreRefused() throws {
        let samples: [[UInt8]] = [
            KernelBytes.request(.lookup, body: KernelBytes.name("x")),
            KernelBytes.request(.getattr, body: KernelBytes.struct_(FuseGetattrIn(flags: 0, fh: 0))),
            KernelBytes.request(.setattr, body: KernelBytes.struct_(FuseSetattrIn())),
            KernelBytes.request(.read, body: KernelBytes.struct_(FuseReadIn(fh: 1, offset: 0, size: 10))),
            KernelBytes.request(.write, body: KernelBytes.struct_(FuseWriteIn(fh: 1, offset: 0, size: 2)) + [1, 2]),
            KernelBytes.request(.rename, body: KernelBytes.u64(1) + KernelBytes.name("a") + KernelBytes.name("b")),
            KernelBytes.request(.create, body: KernelBytes.struct_(FuseCreateIn(flags: 0, mode: 0, umask: 0)) + KernelBytes.name("c")),
            KernelBytes.request(.setlkw, body: KernelBytes.struct_(FuseLockIn(fh: 1, owner: 1, lock: FuseFileLock(start: 0, end: 0, type: 1, pid: 1)))),
            KernelBytes.request(.fallocate, body: KernelBytes.struct_(FuseFallocateIn(fh: 1, offset: 0, length: 1, mode: 0))),
            KernelBytes.request(.`init`, body: KernelBytes.struct_(FuseInitIn(major: 7, minor: 45, maxReadahead: 0, flags: [.initExt]))),
        ]
        for sample in samples {
            _ = try decodeRequest(sample)  // whole: decodes
            for cut in 0..<sample.count {
                var bytes = Array(sample[0..<cut])
                // With the header's length fixed up, so the body check is what fails.
                if cut >= 4 { bytes.replaceSubrange(0..<4, with: KernelBytes.u32(UInt32(cut))) }
                #expect(throws: FuseCodecError.self, "cut at \(cut) of \(sample.count)") { _ = try decodeRequest(bytes) }
            }
        }
    }

    @Test func lengthsThatDisagreeAreRefused() throws {
        var bytes = KernelBytes.request(.getattr, body: KernelBytes.struct_(FuseGetattrIn(flags: 0, fh: 0)))
        bytes.append(0)  // one byte more than the header says
        #expect(throws: FuseCodecError.lengthMismatch(header: 56, read: 57)) { _ = try decodeRequest(bytes) }
        // The header fixed up to cover the extra byte: trailing bytes after a fixed struct.
        bytes.replaceSubrange(0..<4, with: KernelBytes.u32(57))
        #expect(throws: FuseCodecError.trailingBytes(opcode: FuseOpcode.getattr.rawValue, count: 1)) { _ = try decodeRequest(bytes) }
        // A name without its NUL.
        let unterminated = KernelBytes.request(.lookup, body: Array("abc".utf8))
        #expect(throws: FuseCodecError.unterminatedName(opcode: FuseOpcode.lookup.rawValue)) { _ = try decodeRequest(unterminated) }
        // Extensions longer than the request.
        var withExtensions = KernelBytes.request(.statfs)
        withExtensions[36] = 1
        #expect(throws: FuseCodecError.self) { _ = try decodeRequest(withExtensions) }
        // Extensions are skipped, not read as the body.
        var extended = KernelBytes.request(.statfs, body: [UInt8](repeating: 0xAB, count: 8))
        extended[36] = 1
        #expect(try decodeRequest(extended).1 == .statfs)
    }
}

@Suite("FUSE codec: replies and directory entries")
struct FuseReplyTests {
    @Test func errorReplyIsTheHeaderAlone() throws {
        var buffer = [UInt8](repeating: 0xFF, count: 64)
        let length = try buffer.withUnsafeMutableBytes { raw in try FuseReply.error(2, unique: 99, into: raw) }
        #expect(length == 16)
        let header = try Array(buffer[0..<16]).withUnsafeBytes { raw in try FuseOutHeader.decode(raw) }
        #expect(header == FuseOutHeader(length: 16, error: -2, unique: 99))
    }

    @Test func replyLengthCoversTheBody() throws {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = try buffer.withUnsafeMutableBytes { raw in
            try FuseReply.with(FuseOpenOut(fh: 3), unique: 5, into: raw)
        }
        #expect(length == 32)
        let header = try Array(buffer[0..<16]).withUnsafeBytes { raw in try FuseOutHeader.decode(raw) }
        #expect(header == FuseOutHeader(length: 32, error: 0, unique: 5))
        // A buffer too small is an error, not a trap.
        var tiny = [UInt8](repeating: 0, count: 20)
        #expect(throws: FuseCodecError.noRoom(needed: 24, available: 20)) {
            _ = try tiny.withUnsafeMutableBytes { raw in try FuseReply.with(FuseOpenOut(fh: 3), unique: 5, into: raw) }
        }
    }

    @Test func direntsAreAlignedAndStopWhenFull() throws {
        #expect(FuseDirentPacker.direntSize(nameLength: 1) == 32)
        #expect(FuseDirentPacker.direntSize(nameLength: 8) == 32)
        #expect(FuseDirentPacker.direntSize(nameLength: 9) == 40)
        #expect(FuseDirentPacker.direntSize(nameLength: 9, plus: true) == 168)
        var buffer = [UInt8](repeating: 0xEE, count: 4096)
        let (length, packed) = try buffer.withUnsafeMutableBytes { raw in
            var reply = try FuseReply(into: raw, unique: 1)
            // Room for exactly two entries of 32 and 40 bytes, not a third.
            var packer = FuseDirentPacker(continuing: reply.writer, size: 72 + 31)
            let first = packer.append(ino: 10, offset: 1, type: 8, name: ByteView(static: "a"))
            let second = packer.append(ino: 11, offset: 2, type: 4, name: ByteView(static: "directory"))
            let third = packer.append(ino: 12, offset: 3, type: 8, name: ByteView(static: "b"))
            #expect(first && second && !third)
            reply.writer = packer.writer
            return (reply.finish(), packer.count)
        }
        #expect(packed == 2 && length == 16 + 72)
        let entries = try Array(buffer[16..<length]).withUnsafeBytes { raw in try FuseDirent.unpack(raw) }
        #expect(entries == [
            FuseDirent(ino: 10, offset: 1, type: 8, name: Array("a".utf8)),
            FuseDirent(ino: 11, offset: 2, type: 4, name: Array("directory".utf8)),
        ])
        // Padding is zeroed (the kernel copies it to user space).
        #expect(buffer[16 + 25..<16 + 32].allSatisfy { $0 == 0 })
        #expect(buffer[16 + 32 + 33..<16 + 72].allSatisfy { $0 == 0 })
    }

    @Test func direntplusCarriesTheEntry() throws {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var entry = FuseEntryOut()
        entry.nodeID = 0
        entry.attr.ino = 44
        entry.attr.mode = 0o100644
        let length = try buffer.withUnsafeMutableBytes { raw in
            var reply = try FuseReply(into: raw, unique: 1)
            var packer = FuseDirentPacker(continuing: reply.writer, size: 4096)
            let appended = packer.appendPlus(entry, offset: 1, type: 8, name: ByteView(static: "file"))
            #expect(appended)
            reply.writer = packer.writer
            return reply.finish()
        }
        #expect(length == 16 + 128 + 32)
        let back = try Array(buffer[16..<144]).withUnsafeBytes { raw in try FuseEntryOut.decode(raw) }
        #expect(back == entry)
        let dirents = try Array(buffer[144..<length]).withUnsafeBytes { raw in try FuseDirent.unpack(raw) }
        #expect(dirents == [FuseDirent(ino: 44, offset: 1, type: 8, name: Array("file".utf8))])
    }
}
