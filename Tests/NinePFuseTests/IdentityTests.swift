import Glibc
@testable import NinePFuse
import NinePTestSupport
import NinePWire
import Testing

/// Whose identity requests go out as: with per-user attaches (allow_other, mounted by root) the
/// fake kernel's requests name a uid and gid, and ninepd's library (access=user, running as
/// root, so it switches to the attaching user) decides as that user.
@Suite("FUSE identity: per-user attaches and id mapping (fake kernel)")
struct IdentityTests {
    static var isRoot: Bool { geteuid() == 0 }

    static func perUserKernel(capacity: Int = 4096, _ configure: (inout IdentityOptions) -> Void = { _ in }) async throws -> FakeKernel {
        var options = NinePFileSystemOptions()
        options.identity.perUserAttach = true
        options.identity.attachUID = 0
        options.identity.userFidCapacity = capacity
        configure(&options.identity)
        let kernel = try await FakeKernel(options: options)
        chmod(kernel.server.path, 0o777)
        return kernel
    }

    static func create(_ kernel: FakeKernel, _ name: String, in parent: UInt64 = FuseProtocol.rootID, mode: UInt32 = 0o100644, uid: UInt32, gid: UInt32) async -> FakeKernel.Reply {
        await kernel.send(.create, node: parent, KernelBytes.struct_(FuseCreateIn(flags: UInt32(O_RDWR | O_CREAT), mode: mode, umask: 0)) + KernelBytes.name(name), uid: uid, gid: gid)
    }

    static func owner(_ path: String) -> (uid: UInt32, gid: UInt32, mode: UInt32) {
        var st = stat()
        lstat(path, &st)
        return (st.st_uid, st.st_gid, st.st_mode & 0o7777)
    }

    static func getattr(_ kernel: FakeKernel, _ node: UInt64, uid: UInt32, gid: UInt32 = 0) async -> FakeKernel.Reply {
        await kernel.send(.getattr, node: node, KernelBytes.struct_(FuseGetattrIn(flags: 0, fh: 0)), uid: uid, gid: gid)
    }

    @Test func filesCreatedByAnotherUserAreTheirsWithTheirGroup() async throws {
        guard Self.isRoot else { print("IdentityTests: skipped (the server switches users only as root)"); return }
        let kernel = try await Self.perUserKernel()
        let created = await Self.create(kernel, "by-daemon", uid: 1, gid: 1)
        #expect(created.error == 0)
        let entry = try created.decode(FuseEntryOut.self)
        #expect(entry.attr.uid == 1 && entry.attr.gid == 1)
        #expect(Self.owner(kernel.server("by-daemon")) == (1, 1, 0o644))
        let made = await kernel.send(.mkdir, KernelBytes.struct_(FuseMkdirIn(mode: 0o755, umask: 0)) + KernelBytes.name("dir-of-bin"), uid: 2, gid: 2)
        #expect(made.error == 0)
        #expect(Self.owner(kernel.server("dir-of-bin")) == (2, 2, 0o755))
        // The mount's own user (root here) still goes through the node table's fids.
        let byRoot = await Self.create(kernel, "by-root", uid: 0, gid: 0)
        #expect(byRoot.error == 0 && Self.owner(kernel.server("by-root")).uid == 0)
        // One attach per calling uid, the mount's own excluded.
        #expect(kernel.fileSystem.userFids?.rootCount == 2)
        // Another user cannot write into bin's 0755 directory, nor open daemon's 0644 file for writing.
        let dir = try await kernel.lookup("dir-of-bin")
        let intruder = await Self.create(kernel, "x", in: dir.nodeID, uid: 1, gid: 1)
        #expect(intruder.error == EACCES)
        let file = try await kernel.lookup("by-daemon")
        let open = await kernel.send(.open, node: file.nodeID, KernelBytes.struct_(FuseOpenIn(flags: UInt32(O_WRONLY))), uid: 2, gid: 2)
        #expect(open.error == EACCES)
        let owned = await kernel.send(.open, node: file.nodeID, KernelBytes.struct_(FuseOpenIn(flags: UInt32(O_WRONLY))), uid: 1, gid: 1)
        #expect(owned.error == 0)
    }

    @Test func anotherUserIsRefusedWhereTheServerSaysSo() async throws {
        guard Self.isRoot else { print("IdentityTests: skipped (the server switches users only as root)"); return }
        let kernel = try await Self.perUserKernel()
        mkdir(kernel.server("private"), 0o700)
        try writeFile(kernel.server("private/secret"), "s")
        try writeFile(kernel.server("mine"), "m")
        chmod(kernel.server("mine"), 0o600)
        // Root looks everything up (as the battery's setup does); the kernel would then reuse
        // those nodes for other users: their first use walks again as them.
        let privateDir = try await kernel.lookup("private")
        let secret = try await kernel.lookup("secret", in: privateDir.nodeID)
        let mine = try await kernel.lookup("mine")
        #expect(await Self.getattr(kernel, secret.nodeID, uid: 0).error == 0)
        #expect(await Self.getattr(kernel, secret.nodeID, uid: 1).error == EACCES)
        let lookup = await kernel.send(.lookup, node: privateDir.nodeID, KernelBytes.name("secret"), uid: 1, gid: 1)
        #expect(lookup.error == EACCES)
        let read = await kernel.send(.open, node: mine.nodeID, KernelBytes.struct_(FuseOpenIn(flags: UInt32(O_RDONLY))), uid: 1, gid: 1)
        #expect(read.error == EACCES)
        let listing = await kernel.send(.opendir, node: privateDir.nodeID, KernelBytes.struct_(FuseOpenIn(flags: UInt32(O_RDONLY))), uid: 1, gid: 1)
        #expect(listing.error == EACCES)
        var chmodding = FuseSetattrIn()
        chmodding.valid = [.mode]
        chmodding.mode = 0o644
        let chmodByOther = await kernel.send(.setattr, node: mine.nodeID, KernelBytes.struct_(chmodding), uid: 1, gid: 1)
        #expect(chmodByOther.error == EPERM && Self.owner(kernel.server("mine")).mode == 0o600)
        let unlink = await kernel.send(.unlink, node: privateDir.nodeID, KernelBytes.name("secret"), uid: 1, gid: 1)
        #expect(unlink.error == EACCES)
        // ACCESS answers from the mode bits for the caller: no for bin, yes for root, and no
        // execute for root on a file without x bits.
        let accessBin = await kernel.send(.access, node: mine.nodeID, KernelBytes.u32(4) + KernelBytes.u32(0), uid: 2, gid: 2)
        #expect(accessBin.error == EACCES)
        let accessRoot = await kernel.send(.access, node: mine.nodeID, KernelBytes.u32(6) + KernelBytes.u32(0), uid: 0, gid: 0)
        #expect(accessRoot.error == 0)
        let executeRoot = await kernel.send(.access, node: mine.nodeID, KernelBytes.u32(1) + KernelBytes.u32(0), uid: 0, gid: 0)
        #expect(executeRoot.error == EACCES)
    }

    @Test func clearingSetIDBitsBeforeAnotherUsersWriteIsAllowedOnlyToWriters() async throws {
        guard Self.isRoot else { print("IdentityTests: skipped (the server switches users only as root)"); return }
        let kernel = try await Self.perUserKernel()
        try writeFile(kernel.server("shared"), "x")
        chown(kernel.server("shared"), 1, 1)
        chmod(kernel.server("shared"), 0o6777)
        try writeFile(kernel.server("readonly"), "x")
        chown(kernel.server("readonly"), 1, 1)
        chmod(kernel.server("readonly"), 0o6755)
        let shared = try await kernel.lookup("shared")
        let readonly = try await kernel.lookup("readonly")
        var kill = FuseSetattrIn()
        kill.valid = [.mode]
        kill.mode = 0o777
        // What the kernel sends before bin's write to a file it may write: allowed.
        #expect(await kernel.send(.setattr, node: shared.nodeID, KernelBytes.struct_(kill), uid: 2, gid: 2).error == 0)
        #expect(Self.owner(kernel.server("shared")).mode == 0o777)
        // The same shape on a file bin may not write, and any other chmod by a non-owner: EPERM.
        kill.mode = 0o755
        #expect(await kernel.send(.setattr, node: readonly.nodeID, KernelBytes.struct_(kill), uid: 2, gid: 2).error == EPERM)
        #expect(Self.owner(kernel.server("readonly")).mode == 0o6755)
        kill.mode = 0o700
        #expect(await kernel.send(.setattr, node: shared.nodeID, KernelBytes.struct_(kill), uid: 2, gid: 2).error == EPERM)
    }

    @Test func leastRecentlyUsedUserFidsAreEvictedAndWalkedAgain() async throws {
        guard Self.isRoot else { print("IdentityTests: skipped (the server switches users only as root)"); return }
        let kernel = try await Self.perUserKernel(capacity: 16)
        let table = try #require(kernel.fileSystem.userFids)
        var nodes: [UInt64] = []
        for i in 0..<40 {
            try writeFile(kernel.server("f\(i)"), "\(i)")
            nodes.append(try await kernel.lookup("f\(i)").nodeID)
        }
        for node in nodes { #expect(await Self.getattr(kernel, node, uid: 1).error == 0) }
        #expect(table.count == 16)
        #expect(table.evictions == 40 - 16)
        // The oldest went first: f0's fid is gone, f39's is there; f0 still works (walked again).
        #expect(table.file(nodes[0], uid: 1) == nil && table.file(nodes[39], uid: 1) != nil)
        #expect(await Self.getattr(kernel, nodes[0], uid: 1).error == 0)
        #expect(table.file(nodes[0], uid: 1) != nil && table.count == 16 && table.evictions == 40 - 16 + 1)
        // Recently used survives: touch f39, add two more users' fids, f39 stays.
        _ = table.file(nodes[39], uid: 1)
        #expect(await Self.getattr(kernel, nodes[5], uid: 2).error == 0)
        #expect(table.file(nodes[39], uid: 1) != nil)
    }

    @Test func forgetDropsEveryUsersFidsAndTheName() async throws {
        guard Self.isRoot else { print("IdentityTests: skipped (the server switches users only as root)"); return }
        let kernel = try await Self.perUserKernel()
        let table = try #require(kernel.fileSystem.userFids)
        try writeFile(kernel.server("f"), "x")
        let entry = try await kernel.lookup("f")
        for uid: UInt32 in [1, 2, 3] { #expect(await Self.getattr(kernel, entry.nodeID, uid: uid).error == 0) }
        #expect(table.count == 3 && table.name(of: entry.nodeID) != nil)
        kernel.fileSystem.handleInline(FuseInHeader(length: 48, opcode: .forget, unique: 1, nodeID: entry.nodeID), .forget(lookups: 1))
        #expect(table.count == 0 && table.name(of: entry.nodeID) == nil)
        #expect(kernel.fileSystem.nodeCount == 1)
        #expect(await Self.getattr(kernel, entry.nodeID, uid: 1).error == ESTALE)
    }

    @Test func aRenamedNodeIsWalkedByItsNewName() async throws {
        guard Self.isRoot else { print("IdentityTests: skipped (the server switches users only as root)"); return }
        let kernel = try await Self.perUserKernel()
        mkdir(kernel.server("d"), 0o755)
        try writeFile(kernel.server("a"), "x")
        let entry = try await kernel.lookup("a")
        let dir = try await kernel.lookup("d")
        let rename = await kernel.send(.rename, KernelBytes.u64(dir.nodeID) + KernelBytes.name("a") + KernelBytes.name("b"))
        #expect(rename.error == 0)
        let name = try #require(kernel.fileSystem.userFids?.name(of: entry.nodeID))
        #expect(name.parent == dir.nodeID && name.name.makeString() == "b")
        #expect(await Self.getattr(kernel, entry.nodeID, uid: 1).error == 0)
    }

    @Test func anEntryReplyGivesTheCallerTheFidJustWalked() async throws {
        guard Self.isRoot else { print("IdentityTests: skipped (the server switches users only as root)"); return }
        let kernel = try await Self.perUserKernel()
        let table = try #require(kernel.fileSystem.userFids)
        try writeFile(kernel.server("f"), "x")
        chmod(kernel.server("f"), 0o666)
        let entry = try await kernel.lookup("f")
        #expect(await Self.getattr(kernel, entry.nodeID, uid: 1).error == 0)
        let first = try #require(table.file(entry.nodeID, uid: 1))
        #expect(first.path.hasSuffix("/f"))
        // A hard link made by that user: its fid is now the one walked to the new name (a server
        // whose fids name paths would otherwise lose the file once "f" is unlinked).
        let link = await kernel.send(.link, KernelBytes.u64(entry.nodeID) + KernelBytes.name("g"), uid: 1, gid: 1)
        #expect(link.error == 0 && (try? link.decode(FuseEntryOut.self).nodeID) == entry.nodeID)
        let second = try #require(table.file(entry.nodeID, uid: 1))
        #expect(second !== first && second.path.hasSuffix("/g") && table.count == 1)
    }

    @Test func idsAreMappedBothWays() async throws {
        guard Self.isRoot else { print("IdentityTests: skipped (the server switches users only as root)"); return }
        let kernel = try await Self.perUserKernel { identity in
            _ = identity.uidMap.add(IdMap.Range(server: 1, local: 7001))
            _ = identity.gidMap.add(IdMap.Range(server: 1, local: 7001))
        }
        try writeFile(kernel.server("theirs"), "x")
        chown(kernel.server("theirs"), 1, 1)
        let entry = try await kernel.lookup("theirs")
        #expect(entry.attr.uid == 7001 && entry.attr.gid == 7001)
        // Local 7001 attaches as the server's 1, and creates with the server's group 1.
        let created = await Self.create(kernel, "new", uid: 7001, gid: 7001)
        #expect(created.error == 0)
        #expect(Self.owner(kernel.server("new")).uid == 1 && Self.owner(kernel.server("new")).gid == 1)
        #expect(try created.decode(FuseEntryOut.self).attr.uid == 7001)
        // chown to local 7001 is the server's 1; unmapped ids pass unchanged.
        try writeFile(kernel.server("rootfile"), "x")
        let rootFile = try await kernel.lookup("rootfile")
        var chowning = FuseSetattrIn()
        chowning.valid = [.uid, .gid]
        chowning.uid = 7001
        chowning.gid = 2
        let reply = await kernel.send(.setattr, node: rootFile.nodeID, KernelBytes.struct_(chowning))
        #expect(reply.error == 0)
        #expect(Self.owner(kernel.server("rootfile")).uid == 1 && Self.owner(kernel.server("rootfile")).gid == 2)
        let attr = try reply.decode(FuseAttrOut.self).attr
        #expect(attr.uid == 7001 && attr.gid == 2)
    }

    @Test func aSetgidDirectoryGivesNewFilesItsGroup() async throws {
        guard Self.isRoot else { print("IdentityTests: skipped (the server switches users only as root)"); return }
        // ninepd --access client: runs as root and gives new files the group the client names.
        let kernel = try await FakeKernel(server: try TestServer { $0.access = .client })
        mkdir(kernel.server("g"), 0o777)
        chown(kernel.server("g"), 0, 4242)
        chmod(kernel.server("g"), 0o2777)
        let dir = try await kernel.lookup("g")
        let created = await Self.create(kernel, "f", in: dir.nodeID, uid: 0, gid: 0)
        #expect(created.error == 0 && Self.owner(kernel.server("g/f")).gid == 4242)
    }

    @Test func idMapRangesParseRoundTripAndRefuseOverlaps() {
        #expect(IdMap.parseRange("1000:2000") == IdMap.Range(server: 1000, local: 2000, count: 1))
        #expect(IdMap.parseRange("1000:2000:10") == IdMap.Range(server: 1000, local: 2000, count: 10))
        #expect(IdMap.parseRange("1000") == nil && IdMap.parseRange("a:b") == nil && IdMap.parseRange("1:2:3:4") == nil)
        var map = IdMap()
        let added = [
            map.add(IdMap.Range(server: 1000, local: 2000, count: 10)),
            map.add(IdMap.Range(server: 1005, local: 5000, count: 1)),  // the server side overlaps
            map.add(IdMap.Range(server: 3000, local: 2009, count: 1)),  // the local side overlaps
            map.add(IdMap.Range(server: 1, local: 1, count: 0)),
            map.add(IdMap.Range(server: UInt32.max, local: 1, count: 1)),
        ]
        #expect(added == [true, false, false, false, false] && map.ranges.count == 1)
        #expect(map.local(1003) == 2003 && map.server(2003) == 1003)
        #expect(map.local(1010) == 1010 && map.server(42) == 42)
        for id: UInt32 in [0, 999, 1000, 1009, 1010] { #expect(map.server(map.local(id)) == id) }
    }

    @Test func supplementaryGroupsAreReadFromProcStatus() {
        let status = Array("Name:\tcat\nUid:\t1\t1\t1\t1\nGroups:\t4 24 4242 \nNSpgid:\t1\n".utf8)
        status.withUnsafeBytes { raw in
            #expect(StatusGroups.contains(raw, 4242) && StatusGroups.contains(raw, 4) && StatusGroups.contains(raw, 24))
            #expect(!StatusGroups.contains(raw, 42) && !StatusGroups.contains(raw, 1))
        }
        let none = Array("Groups:\t\nX:\t5\n".utf8)
        none.withUnsafeBytes { raw in #expect(!StatusGroups.contains(raw, 5)) }
        #expect(!StatusGroups.contains(process: UInt32(getpid()), gid: 4_000_000_000))
    }
}
