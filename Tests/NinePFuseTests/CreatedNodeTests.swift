import Glibc
@testable import NinePFuse
import NinePWire
import Testing

/// Nodes CREATE makes without a fid (walked by name when first needed, qid-checked), the
/// directories' spare clones, and RELEASE's clunk after the reply (`NodeTable`,
/// `AfterReplyWork`), through the fake kernel against ninepd's library.
@Suite("FUSE: created nodes, spares, release (fake kernel)")
struct CreatedNodeTests {
    /// CREATE of `name` in `parent` (O_RDWR, O_EXCL): the entry and the handle.
    func create(_ kernel: FakeKernel, _ name: String, in parent: UInt64 = FuseProtocol.rootID, exclusive: Bool = true) async throws -> (FuseEntryOut, UInt64) {
        let flags = O_RDWR | O_CREAT | (exclusive ? O_EXCL : 0)
        let reply = await kernel.send(.create, node: parent, KernelBytes.struct_(FuseCreateIn(flags: UInt32(flags), mode: 0o100644, umask: 0)) + KernelBytes.name(name))
        guard reply.error == 0 else { throw FuseFailure(reply.error) }
        let entry = try reply.decode(FuseEntryOut.self)
        let opened = try Array(reply.body[FuseEntryOut.wireSize...]).withUnsafeBytes { raw in try FuseOpenOut.decode(raw) }
        return (entry, opened.fh)
    }

    func write(_ kernel: FakeKernel, _ node: UInt64, _ fh: UInt64, _ text: String) async -> Int32 {
        let payload = Array(text.utf8)
        return await kernel.send(.write, node: node, KernelBytes.struct_(FuseWriteIn(fh: fh, offset: 0, size: UInt32(payload.count))) + payload).error
    }

    func release(_ kernel: FakeKernel, _ node: UInt64, _ fh: UInt64) async -> Int32 {
        await kernel.send(.release, node: node, KernelBytes.struct_(FuseReleaseIn(fh: fh))).error
    }

    func getattr(_ kernel: FakeKernel, _ node: UInt64) async -> (Int32, FuseAttr?) {
        let reply = await kernel.send(.getattr, node: node, KernelBytes.struct_(FuseGetattrIn(flags: 0, fh: 0)))
        return (reply.error, reply.error == 0 ? try? reply.decode(FuseAttrOut.self).attr : nil)
    }

    @Test func aCreatedFileRenamedBeforeItsNodeWasWalkedIsTheSameFile() async throws {
        let kernel = try await FakeKernel()
        let (entry, fh) = try await create(kernel, "a")
        #expect(kernel.fileSystem.nodes.file(entry.nodeID) == nil, "the created node was walked at CREATE")
        #expect(await write(kernel, entry.nodeID, fh, "hello") == 0)
        #expect(await release(kernel, entry.nodeID, fh) == 0)
        #expect(kernel.fileSystem.handleCount == 0)
        let move = await kernel.send(.rename, KernelBytes.u64(FuseProtocol.rootID) + KernelBytes.name("a") + KernelBytes.name("b"))
        #expect(move.error == 0)
        let (code, attr) = await getattr(kernel, entry.nodeID)
        #expect(code == 0 && attr?.size == 5 && attr?.ino == entry.attr.ino, "GETATTR of the renamed node: \(code), \(String(describing: attr))")
        #expect(try await kernel.lookup("b").nodeID == entry.nodeID)
        let opened = try await kernel.open(entry.nodeID)
        let read = await kernel.send(.read, node: entry.nodeID, KernelBytes.struct_(FuseReadIn(fh: opened, offset: 0, size: 100)))
        #expect(read.error == 0 && read.body == Array("hello".utf8))
        #expect(await release(kernel, entry.nodeID, opened) == 0)
    }

    @Test func aCreatedFileUnlinkedWhileOpenStaysReachableThroughItsNode() async throws {
        let kernel = try await FakeKernel()
        let (entry, fh) = try await create(kernel, "t")
        #expect(kernel.fileSystem.nodes.unwalkedOpenCount == 1)
        #expect(await write(kernel, entry.nodeID, fh, "data") == 0)
        #expect(await kernel.send(.unlink, KernelBytes.name("t")).error == 0)
        #expect(access(kernel.server("t"), F_OK) != 0)
        // Without a handle, as the kernel's GETATTR of an inode comes: the node's own fid,
        // walked before the name went.
        let (code, attr) = await getattr(kernel, entry.nodeID)
        #expect(code == 0 && attr?.size == 4 && attr?.nlink == 0, "GETATTR of the unlinked open file's node: \(code), \(String(describing: attr))")
        var truncate = FuseSetattrIn()
        truncate.valid = [.size]
        truncate.size = 2
        let setattr = await kernel.send(.setattr, node: entry.nodeID, KernelBytes.struct_(truncate))
        #expect(setattr.error == 0 && (try? setattr.decode(FuseAttrOut.self).attr.size) == 2)
        let read = await kernel.send(.read, node: entry.nodeID, KernelBytes.struct_(FuseReadIn(fh: fh, offset: 0, size: 100)))
        #expect(read.error == 0 && read.body == Array("da".utf8))
        #expect(await release(kernel, entry.nodeID, fh) == 0)
        #expect(kernel.fileSystem.nodes.unwalkedOpenCount == 0)
    }

    @Test func aCreatedFileMovedOnTheServerIsStaleNeverTheFileNowAtItsName() async throws {
        let kernel = try await FakeKernel()
        let (entry, fh) = try await create(kernel, "m")
        #expect(await release(kernel, entry.nodeID, fh) == 0)
        // Behind the mount's back: moved away, and another file put at its name.
        #expect(Glibc.rename(kernel.server("m"), kernel.server("elsewhere")) == 0)
        try writeFile(kernel.server("m"), "another file")
        let (code, attr) = await getattr(kernel, entry.nodeID)
        #expect(code == ESTALE, "GETATTR of a node whose name now leads to another file: \(code), \(String(describing: attr)) (the other file is 12 bytes)")
        // Its new name, looked up, gives the node its fid: the same node, the same file.
        #expect(try await kernel.lookup("elsewhere").nodeID == entry.nodeID)
        let (again, found) = await getattr(kernel, entry.nodeID)
        #expect(again == 0 && found?.size == 0 && found?.ino == entry.attr.ino)
        #expect(try await kernel.lookup("m").nodeID != entry.nodeID)
    }

    @Test func manyOpenCreatedFilesAreWalkedAtOnceBeyondTheUnwalkedTable() async throws {
        let kernel = try await FakeKernel()
        var created: [(FuseEntryOut, UInt64)] = []
        let count = NodeTable.openUnwalkedCapacity + 8
        for index in 0..<count { created.append(try await create(kernel, "f\(index)")) }
        #expect(kernel.fileSystem.nodes.unwalkedOpenCount == NodeTable.openUnwalkedCapacity)
        let walked = created.filter { kernel.fileSystem.nodes.file($0.0.nodeID) != nil }.count
        #expect(walked == 8)
        for (index, (entry, fh)) in created.enumerated() {
            #expect(await kernel.send(.unlink, KernelBytes.name("f\(index)")).error == 0)
            let (code, attr) = await getattr(kernel, entry.nodeID)
            #expect(code == 0 && attr?.nlink == 0, "f\(index) after UNLINK while open: \(code)")
            #expect(await release(kernel, entry.nodeID, fh) == 0)
        }
        #expect(kernel.fileSystem.nodes.unwalkedOpenCount == 0 && kernel.fileSystem.handleCount == 0)
    }

    @Test func directoriesKeepASpareCloneFromTheirSecondCreateOn() async throws {
        let kernel = try await FakeKernel()
        mkdir(kernel.server("d"), 0o755)
        let directory = try await kernel.lookup("d").nodeID
        let nodes = kernel.fileSystem.nodes
        let (first, fh1) = try await create(kernel, "x1", in: directory)
        #expect(nodes.spareCount == 0, "a spare after the directory's first CREATE")
        let (second, fh2) = try await create(kernel, "x2", in: directory)
        #expect(nodes.spareCount == 1, "no spare after the directory's second CREATE")
        let (third, fh3) = try await create(kernel, "x3", in: directory)
        #expect(nodes.spareCount == 1)
        for name in ["x1", "x2", "x3"] { #expect(access(kernel.server("d/" + name), F_OK) == 0) }
        // A create the server refuses leaves the spare a directory fid, kept for the next.
        #expect(await kernel.send(.create, node: directory, KernelBytes.struct_(FuseCreateIn(flags: UInt32(O_RDWR | O_CREAT | O_EXCL), mode: 0o100644, umask: 0)) + KernelBytes.name("x3")).error == EEXIST)
        #expect(nodes.spareCount == 1)
        let (fourth, fh4) = try await create(kernel, "x4", in: directory)
        #expect(fourth.attr.mode == 0o100644 && access(kernel.server("d/x4"), F_OK) == 0)
        for (entry, fh) in [(first, fh1), (second, fh2), (third, fh3), (fourth, fh4)] { #expect(await release(kernel, entry.nodeID, fh) == 0) }
        // A renamed directory drops its spare (on servers whose fids name paths it names the old one).
        let move = await kernel.send(.rename, KernelBytes.u64(FuseProtocol.rootID) + KernelBytes.name("d") + KernelBytes.name("e"))
        #expect(move.error == 0 && nodes.spareCount == 0)
        let (moved, fh5) = try await create(kernel, "x5", in: directory)
        #expect(access(kernel.server("e/x5"), F_OK) == 0)
        #expect(await release(kernel, moved.nodeID, fh5) == 0)
        // FORGET of the directory drops its spare with it.
        #expect(nodes.spareCount == 1)
        kernel.fileSystem.handleInline(FuseInHeader(length: 48, opcode: .forget, unique: 1, nodeID: directory), .forget(lookups: 1))
        #expect(nodes.spareCount == 0)
    }
}
