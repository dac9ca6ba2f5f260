import Glibc
import NinePTestSupport
import NinePWire
import Testing

/// The in-memory backend serves the protocol's common paths (what the fault-injection tests
/// build on): files, directories, symlinks, hard links, renames, removal of open files, locks.
@Suite struct InMemoryBackendTests {
    @Test func filesAndDirectoriesThroughThe9PServer() throws {
        let s = try InMemoryServer()
        let c = try s.session()
        try c.mkdir(0, "docs")
        _ = try c.walk(0, 1, ["docs"])
        _ = try c.lcreate(1, "note.txt", flags: OpenFlags.readWrite, mode: 0o640)
        #expect(try c.write(1, offset: 0, Array("hello, memory".utf8)) == 13)
        #expect(try c.read(1, offset: 7, count: 100) == Array("memory".utf8))
        #expect(try c.getattr(1).size == 13)
        #expect(s.fs.contents(of: "docs/note.txt") == Array("hello, memory".utf8))

        // Its directory renamed, then the file unlinked while open: the fid still reads it.
        try c.renameat(0, "docs", 0, "papers")
        _ = try c.walk(0, 4, ["papers"])
        try c.unlinkat(4, "note.txt")
        try c.clunk(4)
        #expect(!s.fs.exists("papers/note.txt") && s.fs.exists("papers"))
        #expect(try c.read(1, offset: 0, count: 5) == Array("hello".utf8))
        try c.clunk(1)

        _ = try c.symlink(0, "link", target: "papers")
        _ = try c.walk(0, 2, ["link"])
        #expect(try c.readlink(2) == "papers")
        try c.clunk(2)

        _ = try c.walk(0, 3, ["papers"])
        _ = try c.lopen(3, OpenFlags.readOnly)
        let names = try c.readdir(3, offset: 0, count: 8192).map(\.name)
        #expect(names.contains(".") && names.contains(".."))
        try c.clunk(3)
        #expect(s.serverFids == 1 && s.fs.openHandles == 1)
    }

    @Test func anOpenFileOutlivesItsName() throws {
        let s = try InMemoryServer()
        s.fs.addFile("a.txt", contents: Array("still here".utf8))
        let c = try s.session()
        _ = try c.walk(0, 1, ["a.txt"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        _ = try c.walk(0, 2, ["a.txt"])
        try c.link(0, 2, "b.txt")
        try c.clunk(2)
        try c.unlinkat(0, "a.txt")
        try c.unlinkat(0, "b.txt")
        #expect(!s.fs.exists("a.txt") && !s.fs.exists("b.txt"))
        #expect(try c.read(1, offset: 0, count: 100) == Array("still here".utf8))
        try c.clunk(1)
        #expect(s.fs.openHandles == 1)
    }

    @Test func locksConflictBetweenFids() throws {
        let s = try InMemoryServer()
        s.fs.addFile("locked")
        let c = try s.session()
        for fid: UInt32 in [1, 2] {
            _ = try c.walk(0, fid, ["locked"])
            _ = try c.lopen(fid, OpenFlags.readWrite)
        }
        #expect(try c.lock(1, type: LockType.write) == LockStatus.success)
        #expect(try c.lock(2, type: LockType.write) == LockStatus.blocked)
        #expect(try c.getlock(2, type: LockType.write).type == LockType.write)
        try c.clunk(1)  // its locks go with its handle
        #expect(try c.lock(2, type: LockType.write) == LockStatus.success)
        try c.clunk(2)
    }
}
