import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// Files over the wire: open, create, read, write, attributes, directories and names.
@Suite struct FileTests {
    @Test func createWriteReadWithChecksums() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        let data = pseudoRandomBytes(300_000, seed: 42)

        try c.walk(0, 1, [])
        let created = try c.lcreate(1, "data.bin", flags: OpenFlags.readWrite, mode: 0o640)
        #expect(!created.isDirectory)
        var offset = 0
        while offset < data.count {
            let chunk = Array(data[offset..<min(offset + 60_000, data.count)])
            #expect(try c.write(1, offset: UInt64(offset), chunk) == UInt32(chunk.count))
            offset += chunk.count
        }
        try c.clunk(1)
        #expect(fileBytes(s("data.bin")).map(checksum) == checksum(data))
        #expect(UInt32(lstatOf(s("data.bin"))!.st_mode) & 0o777 == 0o640)

        let walked = try c.walk(0, 2, ["data.bin"])
        #expect(walked.first?.path == created.path)
        #expect(try c.lopen(2, OpenFlags.readOnly).path == created.path)
        var back: [UInt8] = []
        while true {
            let chunk = try c.read(2, offset: UInt64(back.count), count: 65536)
            if chunk.isEmpty { break }
            back += chunk
        }
        #expect(back.count == data.count)
        #expect(checksum(back) == checksum(data))
        // At and past the end: zero bytes, not an error.
        #expect(try c.read(2, offset: UInt64(data.count), count: 100).isEmpty)
        #expect(try c.read(2, offset: UInt64(data.count) + 1_000_000, count: 100).isEmpty)
        // A read from the middle.
        #expect(try c.read(2, offset: 1000, count: 16) == Array(data[1000..<1016]))
        // A read-only fid cannot write.
        #expect(errnoOf { try c.write(2, offset: 0, [1]) } == LinuxErrno.EBADF)
        // Opening twice is refused; reading an unopened fid too.
        #expect(errnoOf { try c.lopen(2, OpenFlags.readOnly) } == LinuxErrno.EBADF)
        try c.walk(0, 3, ["data.bin"])
        #expect(errnoOf { try c.read(3, offset: 0, count: 10) } == LinuxErrno.EBADF)
    }

    /// A Tread whose range is only partly in the page cache answers every byte: the reader's
    /// page-cache-only attempt (RWF_NOWAIT) would return just the cached part, and a client
    /// takes a short read of a regular file for its end. Found by scripts/bench-compare.
    @Test func readOfAPartlyCachedRangeIsWhole() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let data = pseudoRandomBytes(256 * 1024, seed: 9)
        let fd = open(s("partly.bin"), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        defer { Glibc.close(fd) }
        #expect(data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } == data.count)
        #expect(fsync(fd) == 0)  // clean pages can be dropped
        let c = try s.session()
        try c.walk(0, 1, ["partly.bin"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        // Warm through our own descriptor with readahead off, so that exactly the bytes read
        // are cached.
        #expect(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM) == 0)
        var scratch = [UInt8](repeating: 0, count: 68 * 1024)
        for round in 0..<4 {
            // Cached up to 68 KiB, not cached from there on.
            #expect(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
            #expect(scratch.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) } == scratch.count)
            let offset = 32 * 1024 + round * 4096
            let whole = try c.read(1, offset: UInt64(offset), count: 65536)
            #expect(whole.count == 65536, "round \(round): \(whole.count) of 65536 bytes at offset \(offset)")
            #expect(whole == Array(data[offset..<(offset + whole.count)]))
        }
    }

    @Test func lopenFlagsTruncateAndAppend() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("f"), Array("hello world".utf8))
        let c = try s.session()
        try c.walk(0, 1, ["f"])
        try c.lopen(1, OpenFlags.writeOnly | OpenFlags.append)
        try c.write(1, offset: 0, Array("!".utf8))
        #expect(fileBytes(s("f")) == Array("hello world!".utf8))
        try c.walk(0, 2, ["f"])
        try c.lopen(2, OpenFlags.readWrite | OpenFlags.truncate)
        #expect(fileBytes(s("f")) == [])
        // lcreate with O_EXCL on an existing name.
        try c.walk(0, 3, [])
        #expect(errnoOf { try c.lcreate(3, "f", flags: OpenFlags.readWrite | OpenFlags.exclusive) } == LinuxErrno.EEXIST)
        // A directory opens for reading (readdir) but not for writing.
        try c.walk(0, 4, [])
        #expect(try c.lopen(4, OpenFlags.readOnly).isDirectory)
    }

    @Test func getattrMatchesTheRealFile() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("f"), pseudoRandomBytes(12345, seed: 7), mode: 0o640)
        chown(s("f"), 123, 456)
        makeDirectory(s("d"), mode: 0o711)
        let c = try s.session()
        try c.walk(0, 1, ["f"])
        let a = try c.getattr(1)
        let st = lstatOf(s("f"))!
        #expect(a.valid & GetattrMask.basic == GetattrMask.basic)
        #expect(a.mode == UInt32(st.st_mode))
        #expect(a.mode & Mode.typeMask == Mode.regular)
        #expect(a.uid == 123 && a.gid == 456)
        #expect(a.nlink == UInt64(st.st_nlink))
        #expect(a.size == 12345)
        #expect(a.blocks == UInt64(st.st_blocks))
        #expect(a.blockSize == UInt64(st.st_blksize))
        #expect(a.mtimeSeconds == UInt64(st.st_mtim.tv_sec) && a.mtimeNanoseconds == UInt64(st.st_mtim.tv_nsec))
        #expect(a.atimeSeconds == UInt64(st.st_atim.tv_sec) && a.atimeNanoseconds == UInt64(st.st_atim.tv_nsec))
        #expect(a.ctimeSeconds == UInt64(st.st_ctim.tv_sec) && a.ctimeNanoseconds == UInt64(st.st_ctim.tv_nsec))
        #expect(a.qid.path == UInt64(st.st_ino))
        #expect(a.qid.type == Qid.typeFile)

        try c.walk(0, 2, ["d"])
        let d = try c.getattr(2)
        #expect(d.mode == UInt32(lstatOf(s("d"))!.st_mode))
        #expect(d.qid.isDirectory)
        #expect(d.nlink == 2)
    }

    @Test func setattrModeOwnerSizeAndTimes() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("f"), Array(repeating: 0x61, count: 1000))
        let c = try s.session()
        try c.walk(0, 1, ["f"])

        try c.setattr(1, SetattrFields(valid: SetattrValid.mode, mode: 0o600))
        #expect(UInt32(lstatOf(s("f"))!.st_mode) & 0o7777 == 0o600)

        try c.setattr(1, SetattrFields(valid: SetattrValid.uid | SetattrValid.gid, uid: 1234, gid: 5678))
        #expect(lstatOf(s("f"))!.st_uid == 1234 && lstatOf(s("f"))!.st_gid == 5678)
        try c.setattr(1, SetattrFields(valid: SetattrValid.gid, gid: 42))
        #expect(lstatOf(s("f"))!.st_uid == 1234 && lstatOf(s("f"))!.st_gid == 42)

        try c.setattr(1, SetattrFields(valid: SetattrValid.size, size: 100_000))
        #expect(lstatOf(s("f"))!.st_size == 100_000)
        try c.setattr(1, SetattrFields(valid: SetattrValid.size, size: 10))
        #expect(fileBytes(s("f")) == Array(repeating: 0x61, count: 10))

        let explicit = SetattrFields(
            valid: SetattrValid.atime | SetattrValid.mtime | SetattrValid.atimeSet | SetattrValid.mtimeSet,
            atimeSeconds: 1_000_000_000, atimeNanoseconds: 5, mtimeSeconds: 1_100_000_000, mtimeNanoseconds: 7)
        try c.setattr(1, explicit)
        var st = lstatOf(s("f"))!
        #expect(st.st_atim.tv_sec == 1_000_000_000 && st.st_atim.tv_nsec == 5)
        #expect(st.st_mtim.tv_sec == 1_100_000_000 && st.st_mtim.tv_nsec == 7)

        // Only mtime: atime stays.
        try c.setattr(1, SetattrFields(valid: SetattrValid.mtime | SetattrValid.mtimeSet, mtimeSeconds: 1_200_000_000))
        st = lstatOf(s("f"))!
        #expect(st.st_atim.tv_sec == 1_000_000_000 && st.st_mtim.tv_sec == 1_200_000_000)

        // The SET_*_NOW forms: the bits without _SET mean "now".
        let before = time(nil)
        try c.setattr(1, SetattrFields(valid: SetattrValid.atime | SetattrValid.mtime))
        st = lstatOf(s("f"))!
        #expect(st.st_atim.tv_sec >= before - 1 && st.st_atim.tv_sec <= time(nil) + 1)
        #expect(st.st_mtim.tv_sec >= before - 1 && st.st_mtim.tv_sec <= time(nil) + 1)

        // getattr through the protocol agrees.
        let a = try c.getattr(1)
        #expect(a.size == 10 && a.mode & 0o7777 == 0o600 && a.uid == 1234 && a.gid == 42)
    }

    @Test func readdirOverSeveralCallsSeesEveryNameOnce() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        var expected: Set<String> = []
        for i in 0..<500 {
            let name = "file-\(i)-" + String(repeating: "x", count: i % 17)
            makeFile(s(name))
            expected.insert(name)
        }
        let c = try s.session()
        try c.walk(0, 1, [])
        try c.lopen(1, OpenFlags.readOnly | OpenFlags.directory)
        var seen: [String: Int] = [:]
        var offset: UInt64 = 0
        var calls = 0
        while calls < 1000 {
            let entries = try c.readdir(1, offset: offset, count: 4096)
            calls += 1
            if entries.isEmpty { break }
            for e in entries {
                seen[e.name, default: 0] += 1
                if e.name.hasPrefix("file-") {
                    #expect(e.qid.path == UInt64(lstatOf(s(e.name))!.st_ino))
                    #expect(e.type == 8)  // DT_REG
                }
            }
            offset = entries.last!.offset
        }
        #expect(calls > 2, "500 names cannot fit one 4 KiB reply")
        #expect(seen["."] == 1 && seen[".."] == 1)
        for name in expected { #expect(seen[name] == 1, "\(name) seen \(seen[name] ?? 0) times") }
        #expect(seen.count == expected.count + 2)
        // Starting again from offset 0 gives the first entries again.
        #expect(try !c.readdir(1, offset: 0, count: 4096).isEmpty)
        // Readdir on an unopened fid or a file.
        try c.walk(0, 2, [])
        #expect(errnoOf { try c.readdir(2, offset: 0, count: 4096) } == LinuxErrno.EBADF)
    }

    @Test func mkdirSymlinkReadlinkMknodLink() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()

        let dir = try c.mkdir(0, "sub", mode: 0o750)
        #expect(dir.isDirectory)
        let dst = lstatOf(s("sub"))!
        #expect(UInt32(dst.st_mode) & Mode.typeMask == Mode.directory)
        #expect(UInt32(dst.st_mode) & 0o777 == 0o750)
        #expect(dir.path == UInt64(dst.st_ino))
        #expect(errnoOf { try c.mkdir(0, "sub") } == LinuxErrno.EEXIST)

        let link = try c.symlink(0, "ln", target: "some/where/../else")
        #expect(link.isSymlink)
        var buffer = [CChar](repeating: 0, count: 256)
        let n = Glibc.readlink(s("ln"), &buffer, 255)
        #expect(String(decoding: buffer[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "some/where/../else")
        try c.walk(0, 1, ["ln"])
        #expect(try c.readlink(1) == "some/where/../else")
        #expect(try c.getattr(1).mode & Mode.typeMask == Mode.symlink)
        try c.walk(0, 2, ["sub"])
        #expect(errnoOf { try c.readlink(2) } == LinuxErrno.EINVAL)

        let fifo = try c.mknod(0, "fifo", mode: Mode.fifo | 0o640)
        #expect(!fifo.isDirectory)
        let fst = lstatOf(s("fifo"))!
        #expect(UInt32(fst.st_mode) & Mode.typeMask == Mode.fifo)
        #expect(fifo.path == UInt64(fst.st_ino))

        makeFile(s("orig"), [9, 9])
        try c.walk(0, 3, ["orig"])
        try c.link(0, 3, "hard")
        #expect(lstatOf(s("orig"))!.st_nlink == 2)
        #expect(lstatOf(s("hard"))!.st_ino == lstatOf(s("orig"))!.st_ino)
        #expect(try c.getattr(3).nlink == 2)
        // Hard links to directories are refused.
        #expect(errnoOf { try c.link(0, 2, "dirlink") } == LinuxErrno.EPERM)
        #expect(errnoOf { try c.link(0, 3, "hard") } == LinuxErrno.EEXIST)
    }

    @Test func renameatWithinAcrossAndOverAnExistingTarget() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeDirectory(s("d1"))
        makeDirectory(s("d2"))
        makeFile(s("d1/a"), Array("A".utf8))
        makeFile(s("d1/x"), Array("X".utf8))
        makeFile(s("d1/y"), Array("Y".utf8))
        let c = try s.session()
        try c.walk(0, 1, ["d1"])
        try c.walk(0, 2, ["d2"])

        try c.renameat(1, "a", 1, "b")
        #expect(!exists(s("d1/a")) && fileBytes(s("d1/b")) == Array("A".utf8))

        try c.renameat(1, "b", 2, "c")
        #expect(!exists(s("d1/b")) && fileBytes(s("d2/c")) == Array("A".utf8))

        try c.renameat(1, "x", 1, "y")
        #expect(!exists(s("d1/x")) && fileBytes(s("d1/y")) == Array("X".utf8))

        #expect(errnoOf { try c.renameat(1, "missing", 1, "z") } == LinuxErrno.ENOENT)
    }

    @Test func renameAndRemoveOfAWalkedFid() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeDirectory(s("dir"))
        makeFile(s("f"), [1, 2, 3])
        makeFile(s("g"), [4])
        makeDirectory(s("empty"))
        let c = try s.session()
        try c.walk(0, 1, ["f"])
        try c.walk(0, 2, ["dir"])
        try c.rename(1, 2, "moved")
        #expect(!exists(s("f")) && fileBytes(s("dir/moved")) == [1, 2, 3])
        // The fid still names the file after the rename.
        #expect(try c.getattr(1).size == 3)
        // And once more, from its new place.
        try c.rename(1, 0, "back")
        #expect(fileBytes(s("back")) == [1, 2, 3])

        try c.walk(0, 3, ["g"])
        try c.remove(3)
        #expect(!exists(s("g")))
        #expect(errnoOf { try c.getattr(3) } == LinuxErrno.EBADF)  // Tremove clunks

        try c.walk(0, 4, ["empty"])
        try c.remove(4)
        #expect(!exists(s("empty")))

        // The root cannot be removed; the fid is clunked anyway.
        try c.walk(0, 5, [])
        #expect(errnoOf { try c.remove(5) } == LinuxErrno.EBUSY)
        #expect(errnoOf { try c.getattr(5) } == LinuxErrno.EBADF)
        #expect(exists(s.path))
    }

    /// The mode a Tlcreate names is the file's, not masked again by the process umask: with
    /// O_EXCL (served by the connection's reader when nothing else is in flight) and without
    /// (served by a worker), alone and behind another request.
    @Test func lcreateKeepsTheModeItNamesWhoeverServesIt() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        for (index, exclusive) in [true, false].enumerated() {
            try c.walk(0, UInt32(10 + index), [])
            let flags = OpenFlags.readWrite | (exclusive ? OpenFlags.exclusive : 0)
            _ = try c.lcreate(UInt32(10 + index), "mode\(index)", flags: flags, mode: 0o666)
            let mode = lstatOf(s("mode\(index)")).map { UInt32($0.st_mode) & 0o7777 }
            #expect(mode == 0o666, "Tlcreate (O_EXCL \(exclusive)) with mode 0666 made mode \(mode.map { String($0, radix: 8) } ?? "nothing") (the process umask applied again?)")
        }
    }

    @Test func unlinkatFilesAndDirectories() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("f"))
        makeDirectory(s("empty"))
        makeDirectory(s("full"))
        makeFile(s("full/inside"))
        let c = try s.session()
        try c.unlinkat(0, "f")
        #expect(!exists(s("f")))
        #expect(errnoOf { try c.unlinkat(0, "empty") } == LinuxErrno.EISDIR)
        try c.unlinkat(0, "empty", flags: UnlinkFlags.removeDir)
        #expect(!exists(s("empty")))
        #expect(errnoOf { try c.unlinkat(0, "full", flags: UnlinkFlags.removeDir) } == LinuxErrno.ENOTEMPTY)
        #expect(exists(s("full/inside")))
        #expect(errnoOf { try c.unlinkat(0, "missing") } == LinuxErrno.ENOENT)
        #expect(errnoOf { try c.unlinkat(0, "full", flags: 0x1) } == LinuxErrno.EINVAL)
    }

    @Test func statfsAndFsync() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        let fields = try c.statfs(0)
        let real = try #require(hostStatfs(s.path))
        #expect(fields.type == real.type)
        #expect(fields.blockSize == real.blockSize)
        #expect(fields.blocks == real.blocks)
        #expect(fields.files == real.files)
        #expect(fields.nameLength == real.nameLength)

        try c.walk(0, 1, [])
        try c.lcreate(1, "f")
        try c.write(1, offset: 0, [1, 2, 3])
        try c.fsync(1)
        try c.fsync(1, datasync: 1)
        try c.walk(0, 2, ["f"])
        #expect(errnoOf { try c.fsync(2) } == LinuxErrno.EBADF)
    }

    @Test func xattrsSetGetListAndRemove() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("f"), [1])
        let c = try s.session()
        try c.walk(0, 1, ["f"])
        let value = Array("value of x".utf8)

        // Set: xattrcreate on a clone, write the value, clunk.
        try c.walk(1, 2, [])
        try c.xattrcreate(2, "user.x", size: UInt64(value.count), flags: 0)
        #expect(try c.write(2, offset: 0, Array(value[0..<4])) == 4)
        #expect(try c.write(2, offset: 4, Array(value[4...])) == UInt32(value.count - 4))
        try c.clunk(2)
        #expect(xattrValue(s("f"), "user.x").value == value)

        // Get.
        #expect(try c.xattrwalk(1, 3, "user.x") == UInt64(value.count))
        #expect(try c.read(3, offset: 0, count: 100) == value)
        #expect(try c.read(3, offset: UInt64(value.count), count: 100).isEmpty)
        try c.clunk(3)

        // List: the empty name gives the NUL-separated names.
        let listSize = try c.xattrwalk(1, 4, "")
        let list = try c.read(4, offset: 0, count: UInt32(listSize))
        let names = list.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        #expect(names.contains("user.x"))
        try c.clunk(4)

        // Remove: size 0 with XATTR_REPLACE.
        try c.walk(1, 5, [])
        try c.xattrcreate(5, "user.x", size: 0, flags: 2)
        try c.clunk(5)
        #expect(xattrValue(s("f"), "user.x").errno == ENODATA)
        #expect(errnoOf { try c.xattrwalk(1, 6, "user.x") } == LinuxErrno.ENODATA)

        // A value shorter than announced fails at clunk, and sets nothing.
        try c.walk(1, 7, [])
        try c.xattrcreate(7, "user.short", size: 10, flags: 0)
        try c.write(7, offset: 0, [1, 2, 3])
        #expect(errnoOf { try c.clunk(7) } == LinuxErrno.EINVAL)
        #expect(xattrValue(s("f"), "user.short").value == nil)
    }

    @Test func lockConflictsBetweenTwoOpenFids() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("f"), [0, 0, 0, 0])
        let c = try s.session()
        try c.walk(0, 1, ["f"])
        try c.walk(0, 2, ["f"])
        try c.lopen(1, OpenFlags.readWrite)
        try c.lopen(2, OpenFlags.readWrite)

        #expect(try c.lock(1, type: LockType.write) == LockStatus.success)
        #expect(try c.lock(2, type: LockType.write) == LockStatus.blocked)
        #expect(try c.lock(2, type: LockType.read) == LockStatus.blocked)
        let conflict = try c.getlock(2, type: LockType.write)
        #expect(conflict.type == LockType.write)
        #expect(conflict.start == 0)
        // The owner itself sees no conflict.
        #expect(try c.getlock(1, type: LockType.write).type == LockType.unlock)

        #expect(try c.lock(1, type: LockType.unlock) == LockStatus.success)
        #expect(try c.getlock(2, type: LockType.write).type == LockType.unlock)
        #expect(try c.lock(2, type: LockType.write) == LockStatus.success)
        #expect(try c.lock(1, type: LockType.read, start: 0, length: 2) == LockStatus.blocked)

        // Clunking the holder releases its lock.
        try c.clunk(2)
        #expect(try c.lock(1, type: LockType.write) == LockStatus.success)

        // A lock on an unopened fid.
        try c.walk(0, 3, ["f"])
        #expect(errnoOf { try c.lock(3, type: LockType.write) } == LinuxErrno.EBADF)
    }

    @Test func openUnlinkThenFstatAndFtruncate() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        try c.walk(0, 1, [])
        try c.lcreate(1, "tmp", flags: OpenFlags.readWrite)
        try c.write(1, offset: 0, pseudoRandomBytes(5000, seed: 3))
        try c.unlinkat(0, "tmp")
        #expect(!exists(s("tmp")))

        let a = try c.getattr(1)
        #expect(a.size == 5000)
        #expect(a.nlink == 0)
        try c.setattr(1, SetattrFields(valid: SetattrValid.size, size: 100))
        #expect(try c.getattr(1).size == 100)
        try c.setattr(1, SetattrFields(valid: SetattrValid.mode, mode: 0o600))
        #expect(try c.getattr(1).mode & 0o777 == 0o600)
        #expect(try c.read(1, offset: 0, count: 1000) == Array(pseudoRandomBytes(5000, seed: 3)[0..<100]))
        try c.write(1, offset: 100, [7])
        #expect(try c.getattr(1).size == 101)
    }

    /// DESIGN.md's corners: fids name inodes, not paths. A fid survives the rename of its
    /// parent and of its own file, an open file keeps working after a rename, and an open
    /// directory can be removed.
    @Test func fidsFollowRenamesAndRemovals() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeDirectory(s("p"))
        makeDirectory(s("p/child"))
        makeFile(s("p/child/f"), [1, 2, 3])
        let c = try s.session()
        let walked = try c.walk(0, 1, ["p", "child"])
        try c.walk(1, 2, ["f"])
        try c.lopen(2, OpenFlags.readWrite)
        #expect(Glibc.rename(s("p"), s("q")) == 0)
        // The fid's parent is the renamed directory.
        #expect(try c.walk(1, 3, [".."]) == [walked[0]])
        #expect(try c.walk(1, 4, ["f"]).count == 1)
        // The open file, renamed under the client, keeps reading and writing.
        #expect(Glibc.rename(s("q/child/f"), s("q/g")) == 0)
        try c.write(2, offset: 3, [4])
        #expect(fileBytes(s("q/g")) == [1, 2, 3, 4])
        #expect(try c.read(2, offset: 0, count: 10) == [1, 2, 3, 4])
        // Trename of a fid whose file moved: it is found by its current name.
        try c.walk(0, 5, ["q", "g"])
        try c.rename(5, 0, "top")
        #expect(fileBytes(s("top")) == [1, 2, 3, 4])

        // An open directory removed under its fid.
        try c.walk(1, 6, [])
        try c.lopen(6, OpenFlags.readOnly)
        try c.unlinkat(3, "child", flags: UnlinkFlags.removeDir)
        #expect(!exists(s("q/child")))
        #expect(try c.getattr(6).nlink == 0)
        if let entries = try? c.readdir(6, offset: 0, count: 4096) {
            #expect(entries.allSatisfy { $0.name == "." || $0.name == ".." })
        }
        #expect(errnoOf { try c.walk(1, 7, ["x"]) } == LinuxErrno.ENOENT)
        #expect(errnoOf { try c.lcreate(1, "x") } == LinuxErrno.ENOENT)
    }

    /// Partial walk of a fid onto itself leaves it where it was.
    @Test func aPartialWalkOntoItselfLeavesTheFid() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeDirectory(s("a"))
        let c = try s.session()
        try c.walk(0, 1, [])
        let root = try c.getattr(1).qid
        #expect(try c.walk(1, 1, ["a", "missing"]).count == 1)
        #expect(try c.getattr(1).qid == root)
    }

    @Test func distinctFilesHaveDistinctQidPaths() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        var paths: Set<UInt64> = [try c.getattr(0).qid.path]
        for i in 0..<10 {
            try c.walk(0, 1, [])
            paths.insert(try c.lcreate(1, "f\(i)").path)
            try c.clunk(1)
            paths.insert(try c.mkdir(0, "d\(i)").path)
        }
        #expect(paths.count == 21)
        // The same file reached twice has the same qid.
        let once = try c.walk(0, 2, ["f3"])
        let twice = try c.walk(0, 3, ["d3", "..", "f3"])
        #expect(once.last == twice.last)
        // A file deleted and recreated under the same name gets a different qid.
        try c.unlinkat(0, "f3")
        usleep(30_000)  // past the coarse clock tick that stamps the birth time
        try c.walk(0, 4, [])
        let recreated = try c.lcreate(4, "f3")
        #expect(recreated != once.last)
    }
}
