import CNinePShims
import Glibc
@testable import NinePFuse
import NinePWire
import Testing

/// `NinePFileSystem` driven by a fake kernel against ninepd's library: the mapping of FUSE
/// requests onto 9P, without /dev/fuse or root.
@Suite("FUSE file system over 9P (fake kernel)")
struct FileSystemTests {
    @Test func lookupsOfOneFileMeetOneNodeAndForgetCountsThem() async throws {
        let kernel = try await FakeKernel()
        try writeFile(kernel.server("a"), "data")
        link(kernel.server("a"), kernel.server("hard"))
        let first = try await kernel.lookup("a")
        let second = try await kernel.lookup("a")
        let viaLink = try await kernel.lookup("hard")
        #expect(first.nodeID > FuseProtocol.rootID)
        #expect(second.nodeID == first.nodeID && viaLink.nodeID == first.nodeID)
        #expect(first.attr.size == 4 && first.attr.mode == 0o100644 && first.attr.nlink == 2)
        #expect(kernel.fileSystem.nodeCount == 2)
        // Three lookups: forgetting two keeps the node, the third takes it away.
        let (_, forgetTwo, _) = try decodeRequest(KernelBytes.request(.forget, nodeID: first.nodeID, body: KernelBytes.u64(2)))
        kernel.fileSystem.handleInline(FuseInHeader(length: 48, opcode: .forget, unique: 1, nodeID: first.nodeID), forgetTwo)
        #expect(kernel.fileSystem.nodeCount == 2)
        kernel.fileSystem.handleInline(FuseInHeader(length: 48, opcode: .forget, unique: 2, nodeID: first.nodeID), .forget(lookups: 1))
        #expect(kernel.fileSystem.nodeCount == 1)
        // A missing name is a negative entry (node 0) the kernel may keep for the entry timeout.
        let missing = await kernel.send(.lookup, KernelBytes.name("nope"))
        #expect(missing.error == 0)
        let negative = try missing.decode(FuseEntryOut.self)
        #expect(negative.nodeID == 0 && negative.entryValidSeconds == 1)
        #expect(kernel.fileSystem.nodeCount == 1)
        let stale = await kernel.send(.getattr, node: 9999, KernelBytes.struct_(FuseGetattrIn(flags: 0, fh: 0)))
        #expect(stale.error == ESTALE)
    }

    @Test func aReplyTheKernelRefusesIsUndone() async throws {
        let kernel = try await FakeKernel()
        try writeFile(kernel.server("a"), "data")
        let entry = try await kernel.lookup("a")
        #expect(kernel.fileSystem.nodeCount == 2)
        // The kernel refused the LOOKUP's reply (write(2) answered ENOENT): its count goes back,
        // and with it the node, as if the kernel had forgotten it.
        kernel.fileSystem.undoUntakenReply(kernel.slot, kernel.lastHeader)
        #expect(kernel.fileSystem.nodeCount == 1)
        #expect(await kernel.send(.getattr, node: entry.nodeID, KernelBytes.struct_(FuseGetattrIn(flags: 0, fh: 0))).error == ESTALE)
        // A refused CREATE gives back both its lookup and its handle.
        let create = await kernel.send(.create, KernelBytes.struct_(FuseCreateIn(flags: UInt32(O_RDWR | O_CREAT), mode: 0o100640, umask: 0)) + KernelBytes.name("new"))
        #expect(create.error == 0 && kernel.fileSystem.nodeCount == 2 && kernel.fileSystem.handleCount == 1)
        kernel.fileSystem.undoUntakenReply(kernel.slot, kernel.lastHeader)
        #expect(kernel.fileSystem.nodeCount == 1 && kernel.fileSystem.handleCount == 0)
        // A refused OPEN gives back its handle.
        let node = try await kernel.lookup("a")
        _ = try await kernel.open(node.nodeID)
        #expect(kernel.fileSystem.handleCount == 1)
        kernel.fileSystem.undoUntakenReply(kernel.slot, kernel.lastHeader)
        #expect(kernel.fileSystem.handleCount == 0 && kernel.fileSystem.nodeCount == 2)
    }

    @Test func fullTablesAnswerENFILE() async throws {
        var options = NinePFileSystemOptions()
        options.nodeCapacity = 3
        options.handleCapacity = 1
        let kernel = try await FakeKernel(options: options)
        for name in ["a", "b", "c"] { try writeFile(kernel.server(name), name) }
        let a = try await kernel.lookup("a")
        _ = try await kernel.lookup("b")
        // Root, a and b fill the three places: a new file is refused, a known one still found.
        #expect(await kernel.send(.lookup, KernelBytes.name("c")).error == ENFILE)
        #expect(try await kernel.lookup("a").nodeID == a.nodeID)
        // One handle at most.
        let fh = try await kernel.open(a.nodeID)
        #expect(await kernel.send(.open, node: a.nodeID, KernelBytes.struct_(FuseOpenIn(flags: UInt32(O_RDONLY)))).error == ENFILE)
        #expect(kernel.fileSystem.handleCount == 1)
        // Room again once the kernel forgets a node.
        kernel.fileSystem.handleInline(FuseInHeader(length: 48, opcode: .forget, unique: 1, nodeID: a.nodeID), .forget(lookups: 2))
        #expect(try await kernel.lookup("c").nodeID > a.nodeID)
        _ = fh
    }

    @Test func readdirInSmallPiecesListsEveryNameOnce() async throws {
        let kernel = try await FakeKernel()
        let names = (0..<40).map { "entry-\($0)-" + String(repeating: "n", count: $0 % 13) }
        for name in names { try writeFile(kernel.server(name), "") }
        let fh = try await kernel.open(FuseProtocol.rootID, flags: O_RDONLY | O_DIRECTORY, directory: true)
        var seen: [String] = []
        var offset: UInt64 = 0
        for _ in 0..<200 {
            // 200 bytes: a few entries per READDIR, as a kernel with a small buffer would ask.
            let reply = await kernel.send(.readdir, KernelBytes.struct_(FuseReadIn(fh: fh, offset: offset, size: 200)))
            #expect(reply.error == 0)
            let entries = try reply.body.withUnsafeBytes { raw in try FuseDirent.unpack(raw) }
            if entries.isEmpty { break }
            #expect(reply.body.count <= 200)
            seen += entries.map { String(decoding: $0.name, as: UTF8.self) }
            offset = entries.last!.offset
        }
        #expect(seen.filter { $0 != "." && $0 != ".." }.sorted() == names.sorted())
        let release = await kernel.send(.releasedir, KernelBytes.struct_(FuseReleaseIn(fh: fh)))
        #expect(release.error == 0 && kernel.fileSystem.handleCount == 0)
    }

    /// READDIRPLUS in small pieces: every name once, each with the lookup LOOKUP would give
    /// (same node, the file's size), "." and ".." with node id 0; forgetting each counted lookup
    /// once brings the node table back to the root alone.
    @Test func readdirplusAnswersLookupsAndForgetBalancesThem() async throws {
        let kernel = try await FakeKernel()
        let names = (0..<30).map { "plus-\($0)-" + String(repeating: "p", count: $0 % 11) }
        for (i, name) in names.enumerated() { try writeFile(kernel.server(name), String(repeating: "x", count: i)) }
        let fh = try await kernel.open(FuseProtocol.rootID, flags: O_RDONLY | O_DIRECTORY, directory: true)
        var seen: [String: FuseEntryOut] = [:]
        var dots: [UInt64] = []
        var offset: UInt64 = 0
        for _ in 0..<200 {
            // 600 bytes: two to three entries of about 180 bytes per reply.
            let reply = await kernel.send(.readdirplus, KernelBytes.struct_(FuseReadIn(fh: fh, offset: offset, size: 600)))
            #expect(reply.error == 0 && reply.body.count <= 600)
            if reply.body.isEmpty { break }
            try reply.body.withUnsafeBytes { raw in
                var position = 0
                while position < raw.count {
                    let entry = try FuseEntryOut.decode(UnsafeRawBufferPointer(rebasing: raw[position..<(position + FuseEntryOut.wireSize)]))
                    let (name, next) = FuseDirentPacker.plusEntry(in: raw, at: position)
                    let text = name.makeString()
                    if text == "." || text == ".." { dots.append(entry.nodeID) } else {
                        #expect(seen[text] == nil, "\(text) listed twice")
                        seen[text] = entry
                    }
                    offset = raw.loadUnaligned(fromByteOffset: position + FuseEntryOut.wireSize + 8, as: UInt64.self)
                    position = next
                }
            }
        }
        #expect(Set(seen.keys) == Set(names))
        #expect(dots.count == 2 && dots.allSatisfy { $0 == 0 })
        for (i, name) in names.enumerated() {
            let entry = try #require(seen[name])
            #expect(entry.nodeID > FuseProtocol.rootID && entry.attr.size == UInt64(i) && entry.attr.mode & 0o170000 == 0o100000)
            #expect(entry.entryValidSeconds == 1 && entry.attrValidSeconds == 1)
        }
        #expect(kernel.fileSystem.nodeCount == 1 + names.count)
        // LOOKUP of a listed name meets the node READDIRPLUS gave (one more lookup counted).
        let again = try await kernel.lookup(names[3])
        #expect(again.nodeID == seen[names[3]]?.nodeID)
        kernel.fileSystem.handleInline(FuseInHeader(length: 48, opcode: .forget, unique: 1, nodeID: again.nodeID), .forget(lookups: 1))
        for entry in seen.values {
            kernel.fileSystem.handleInline(FuseInHeader(length: 48, opcode: .forget, unique: 1, nodeID: entry.nodeID), .forget(lookups: 1))
        }
        #expect(kernel.fileSystem.nodeCount == 1)
        let release = await kernel.send(.releasedir, KernelBytes.struct_(FuseReleaseIn(fh: fh)))
        #expect(release.error == 0 && kernel.fileSystem.handleCount == 0)
    }

    @Test func createWriteReadAndShortReadAtTheEnd() async throws {
        let kernel = try await FakeKernel()
        let create = await kernel.send(.create, KernelBytes.struct_(FuseCreateIn(flags: UInt32(O_RDWR | O_CREAT), mode: 0o100640, umask: 0)) + KernelBytes.name("new"))
        #expect(create.error == 0)
        let entry = try create.decode(FuseEntryOut.self)
        let opened = try Array(create.body[FuseEntryOut.wireSize...]).withUnsafeBytes { raw in try FuseOpenOut.decode(raw) }
        #expect(entry.attr.mode == 0o100640)
        let payload = Array("hello, fuse".utf8)
        let write = await kernel.send(.write, node: entry.nodeID, KernelBytes.struct_(FuseWriteIn(fh: opened.fh, offset: 0, size: UInt32(payload.count))) + payload)
        #expect(try write.decode(FuseWriteOut.self).size == UInt32(payload.count))
        #expect(try readFile(kernel.server("new")) == "hello, fuse")
        let read = await kernel.send(.read, node: entry.nodeID, KernelBytes.struct_(FuseReadIn(fh: opened.fh, offset: 7, size: 4096)))
        #expect(read.error == 0 && read.body == Array("fuse".utf8))
        let beyond = await kernel.send(.read, node: entry.nodeID, KernelBytes.struct_(FuseReadIn(fh: opened.fh, offset: 100, size: 4096)))
        #expect(beyond.error == 0 && beyond.body.isEmpty)
        var truncate = FuseSetattrIn()
        truncate.valid = [.size, .fh]
        truncate.fh = opened.fh
        truncate.size = 5
        let setattr = await kernel.send(.setattr, node: entry.nodeID, KernelBytes.struct_(truncate))
        #expect(try setattr.decode(FuseAttrOut.self).attr.size == 5)
        let release = await kernel.send(.release, node: entry.nodeID, KernelBytes.struct_(FuseReleaseIn(fh: opened.fh)))
        #expect(release.error == 0)
        let unknown = await kernel.send(.read, node: entry.nodeID, KernelBytes.struct_(FuseReadIn(fh: opened.fh, offset: 0, size: 10)))
        #expect(unknown.error == EBADF)
    }

    @Test func renamesAcrossDirectoriesAndRefusesRename2Flags() async throws {
        let kernel = try await FakeKernel()
        mkdir(kernel.server("d"), 0o755)
        try writeFile(kernel.server("f"), "x")
        let directory = try await kernel.lookup("d")
        let move = await kernel.send(.rename, KernelBytes.u64(directory.nodeID) + KernelBytes.name("f") + KernelBytes.name("g"))
        #expect(move.error == 0)
        #expect(access(kernel.server("d/g"), F_OK) == 0 && access(kernel.server("f"), F_OK) != 0)
        let noReplace = await kernel.send(.rename2, node: directory.nodeID, KernelBytes.u64(FuseProtocol.rootID) + KernelBytes.u32(1) + KernelBytes.u32(0) + KernelBytes.name("g") + KernelBytes.name("h"))
        #expect(noReplace.error == EINVAL)
        let notEmpty = await kernel.send(.rmdir, KernelBytes.name("d"))
        #expect(notEmpty.error == ENOTEMPTY)
    }

    @Test func xattrSizesAndRange() async throws {
        let kernel = try await FakeKernel()
        try writeFile(kernel.server("f"), "x")
        let node = try await kernel.lookup("f").nodeID
        let set = await kernel.send(.setxattr, node: node, KernelBytes.u32(5) + KernelBytes.u32(0) + KernelBytes.name("user.k") + Array("value".utf8))
        guard set.error == 0 else {
            // The file system of the temporary directory may not take user xattrs.
            #expect(set.error == EOPNOTSUPP)
            return
        }
        let size = await kernel.send(.getxattr, node: node, KernelBytes.u32(0) + KernelBytes.u32(0) + KernelBytes.name("user.k"))
        #expect(try size.decode(FuseGetxattrOut.self).size == 5)
        let small = await kernel.send(.getxattr, node: node, KernelBytes.u32(2) + KernelBytes.u32(0) + KernelBytes.name("user.k"))
        #expect(small.error == ERANGE)
        let value = await kernel.send(.getxattr, node: node, KernelBytes.u32(64) + KernelBytes.u32(0) + KernelBytes.name("user.k"))
        #expect(value.body == Array("value".utf8))
        let remove = await kernel.send(.removexattr, node: node, KernelBytes.name("user.k"))
        #expect(remove.error == 0)
        let gone = await kernel.send(.getxattr, node: node, KernelBytes.u32(0) + KernelBytes.u32(0) + KernelBytes.name("user.k"))
        #expect(gone.error == ENODATA)
    }
}

extension FileSystemTests {
    /// The ACL and security-label GETXATTRs `ls -l` sends for every entry: an absence is
    /// remembered for the attribute timeout (the server's change is not seen meanwhile, as
    /// with attributes), and a SETXATTR of the name through the mount forgets it at once.
    @Test func absentAclIsRememberedUntilSetThroughTheMount() async throws {
        var options = NinePFileSystemOptions()
        options.attributeTimeout = .seconds(3600)
        let kernel = try await FakeKernel(options: options)
        try writeFile(kernel.server("f"), "x")
        let node = try await kernel.lookup("f").nodeID
        let aclName = "system.posix_acl_access"
        let ask = KernelBytes.u32(0) + KernelBytes.u32(0) + KernelBytes.name(aclName)
        #expect(await kernel.send(.getxattr, node: node, ask).error == ENODATA)
        #expect(await kernel.send(.getxattr, node: node, KernelBytes.u32(0) + KernelBytes.u32(0) + KernelBytes.name("security.selinux")).error == ENODATA)
        // An ACL (user::rw-, user 1234 r--, group::r--, mask::r--, other::---) set on the server
        // behind the mount's back: still absent for the mount, within the timeout.
        let acl = Self.aclBlob([(0x01, 6, UInt32.max), (0x02, 4, 1234), (0x04, 4, UInt32.max), (0x10, 4, UInt32.max), (0x20, 0, UInt32.max)])
        let fd = open(kernel.server("f"), O_RDONLY)
        let set = acl.withUnsafeBytes { ninep_fd_setxattr(fd, aclName, $0.baseAddress, $0.count, 0) }
        let setErrno = errno
        close(fd)
        guard set == 0 else {
            // The file system of the temporary directory may not take ACLs.
            #expect(setErrno == EOPNOTSUPP || -set == EOPNOTSUPP)
            return
        }
        let cached = await kernel.send(.getxattr, node: node, ask)
        #expect(cached.error == ENODATA, "the absence was not remembered: \(cached.error)")
        // Set through the mount: forgotten, so the server is asked and answers.
        let viaMount = await kernel.send(.setxattr, node: node, KernelBytes.u32(UInt32(acl.count)) + KernelBytes.u32(0) + KernelBytes.name(aclName) + acl)
        #expect(viaMount.error == 0)
        let size = await kernel.send(.getxattr, node: node, ask)
        #expect(size.error == 0)
        #expect(try size.decode(FuseGetxattrOut.self).size == UInt32(acl.count))
    }

    /// The on-disk form of a POSIX ACL xattr: version 2, then (tag, perm, id) entries.
    static func aclBlob(_ entries: [(tag: UInt16, perm: UInt16, id: UInt32)]) -> [UInt8] {
        var bytes = KernelBytes.u32(2)
        for entry in entries {
            bytes += [UInt8(entry.tag & 0xff), UInt8(entry.tag >> 8), UInt8(entry.perm & 0xff), UInt8(entry.perm >> 8)]
            bytes += KernelBytes.u32(entry.id)
        }
        return bytes
    }
}

/// Writes `text` to `path` (tests only; no Foundation).
func writeFile(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw FuseFailure(errno) }
    defer { close(fd) }
    var copy = text
    _ = copy.withUTF8 { Glibc.write(fd, $0.baseAddress, $0.count) }
}

/// The first 4 KiB of `path` as text.
func readFile(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw FuseFailure(errno) }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 4096)
    let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
    return String(decoding: bytes[0..<max(0, n)], as: UTF8.self)
}
