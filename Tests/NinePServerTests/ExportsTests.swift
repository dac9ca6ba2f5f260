import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// Exports by aname: each attach gets the export its aname names, with that export's own
/// read-only flag, squash user, allowed users and root; `replaceExports` (ninepd's SIGHUP)
/// changes what new attaches get and nothing of the sessions attached before.
@Suite struct ExportsTests {
    /// A server with exports "a" (read-write, holding `in-a`) and "b" (read-only, holding
    /// `in-b`), both directories inside the test server's own temporary directory.
    /// `adjust` changes the two configurations before the server starts.
    static func twoExports(_ adjust: (inout ExportConfiguration, inout ExportConfiguration) -> Void = { _, _ in }) throws -> TestServer {
        try TestServer { configuration in
            let top = configuration.exportPath
            makeDirectory("\(top)/a")
            makeDirectory("\(top)/b")
            makeFile("\(top)/a/in-a", Array("file of a".utf8))
            makeFile("\(top)/b/in-b", Array("file of b".utf8))
            var a = ExportConfiguration(name: "a", path: "\(top)/a")
            var b = ExportConfiguration(name: "b", path: "\(top)/b")
            b.readOnly = true
            adjust(&a, &b)
            configuration.exports = [a, b]
        }
    }

    /// Reads a whole small file through a new fid walked from `root`.
    static func read(_ c: WireClient, root: UInt32, _ name: String, fid: UInt32) throws -> String {
        try c.walk(root, fid, [name])
        try c.lopen(fid, OpenFlags.readOnly)
        defer { try? c.clunk(fid) }
        return String(decoding: try c.read(fid, offset: 0, count: 4096), as: UTF8.self)
    }

    @Test func eachAnameAttachesItsOwnExport() throws {
        let s = try Self.twoExports()
        defer { s.shutdown() }
        let c = try s.client()
        try c.version()
        try c.attach(fid: 0, aname: "a")
        try c.attach(fid: 1, aname: "b")
        #expect(try Self.read(c, root: 0, "in-a", fid: 10) == "file of a")
        #expect(try Self.read(c, root: 1, "in-b", fid: 11) == "file of b")
        #expect(errnoOf { try c.walk(0, 12, ["in-b"]) } == LinuxErrno.ENOENT)
        #expect(errnoOf { try c.walk(1, 12, ["in-a"]) } == LinuxErrno.ENOENT)

        // The empty aname is the first export; an export's path selects it too (the kernel
        // client and diod send a path), with or without a trailing slash.
        try c.attach(fid: 2, aname: "")
        #expect(try Self.read(c, root: 2, "in-a", fid: 13) == "file of a")
        try c.attach(fid: 3, aname: s("b"))
        #expect(try Self.read(c, root: 3, "in-b", fid: 14) == "file of b")
        try c.attach(fid: 4, aname: s("b") + "/")
        #expect(try Self.read(c, root: 4, "in-b", fid: 15) == "file of b")

        // Nothing else attaches: not an unknown name, not the directory that holds both.
        #expect(errnoOf { try c.attach(fid: 5, aname: "c") } == LinuxErrno.ENOENT)
        #expect(errnoOf { try c.attach(fid: 5, aname: s.path) } == LinuxErrno.ENOENT)
        #expect(errnoOf { try c.attach(fid: 5, aname: "a/in-a") } == LinuxErrno.ENOENT)
        #expect(s.server.exports.map(\.name) == ["a", "b"])
    }

    @Test func readOnlyIsPerExport() throws {
        let s = try Self.twoExports()
        defer { s.shutdown() }
        let c = try s.client()
        try c.version()
        try c.attach(fid: 0, aname: "a")
        try c.attach(fid: 1, aname: "b")

        // a is read-write: create, write, mkdir, rename, remove all work.
        try c.walk(0, 10, [])
        _ = try c.lcreate(10, "new-in-a")
        #expect(try c.write(10, offset: 0, Array("written".utf8)) == 7)
        try c.clunk(10)
        #expect(fileBytes(s("a/new-in-a")) == Array("written".utf8))
        _ = try c.mkdir(0, "dir-in-a")
        try c.renameat(0, "new-in-a", 0, "renamed-in-a")
        try c.unlinkat(0, "renamed-in-a")

        // b is read-only: every change is EROFS, reading still works.
        try c.walk(1, 11, [])
        #expect(errnoOf { try c.lcreate(11, "new-in-b") } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.mkdir(1, "dir-in-b") } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.symlink(1, "link-in-b", target: "in-b") } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.renameat(1, "in-b", 1, "moved") } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.unlinkat(1, "in-b") } == LinuxErrno.EROFS)
        try c.walk(1, 12, ["in-b"])
        #expect(errnoOf { try c.lopen(12, OpenFlags.readWrite) } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.setattr(12, SetattrFields(valid: SetattrValid.size, size: 0)) } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.remove(12) } == LinuxErrno.EROFS)
        #expect(!exists(s("b/new-in-b")) && !exists(s("b/dir-in-b")) && fileBytes(s("b/in-b")) == Array("file of b".utf8))
        #expect(try Self.read(c, root: 1, "in-b", fid: 13) == "file of b")
    }

    @Test func aRenameOrLinkAcrossExportsIsEXDEV() throws {
        let s = try Self.twoExports { _, b in b.readOnly = false }
        defer { s.shutdown() }
        let c = try s.client()
        try c.version()
        try c.attach(fid: 0, aname: "a")
        try c.attach(fid: 1, aname: "b")
        #expect(errnoOf { try c.renameat(0, "in-a", 1, "moved") } == LinuxErrno.EXDEV)
        try c.walk(0, 2, ["in-a"])
        #expect(errnoOf { try c.link(1, 2, "linked") } == LinuxErrno.EXDEV)
        #expect(exists(s("a/in-a")) && !exists(s("b/moved")) && !exists(s("b/linked")))
    }

    @Test(.enabled(if: geteuid() == 0, "squashing needs root"))
    func squashIsPerExport() throws {
        let s = try Self.twoExports { a, b in
            a.squash = SquashIdentity(uid: 4242, gid: 4343)
            b.readOnly = false
        }
        defer { s.shutdown() }
        // World-writable, so the squash user may create in them.
        chmod(s("a"), 0o777)
        chmod(s("b"), 0o777)
        let c = try s.client()
        try c.version()
        try c.attach(fid: 0, aname: "a", nuname: 1000)
        try c.attach(fid: 1, aname: "b", nuname: 1000)
        try c.walk(0, 10, [])
        _ = try c.lcreate(10, "made-in-a", gid: 1000)
        try c.walk(1, 11, [])
        _ = try c.lcreate(11, "made-in-b", gid: 1000)
        let inA = try #require(lstatOf(s("a/made-in-a")))
        let inB = try #require(lstatOf(s("b/made-in-b")))
        #expect(inA.st_uid == 4242 && inA.st_gid == 4343, "a squashes to 4242:4343")
        #expect(inB.st_uid == 1000 && inB.st_gid == 1000, "b keeps the attaching user")
    }

    /// One server, two access modes: "a" checks permissions as the attaching user (access
    /// user), "b" leaves them to the client and gives new files to that user (access client).
    @Test(.enabled(if: geteuid() == 0, "access modes need root"))
    func accessModeIsPerExport() throws {
        let s = try Self.twoExports { _, b in
            b.readOnly = false
            b.access = .client
        }
        defer { s.shutdown() }
        // Both directories belong to root, mode 0755: user 1000 may not create in them itself.
        chmod(s("a"), 0o755)
        chmod(s("b"), 0o755)
        let c = try s.client()
        try c.version()
        try c.attach(fid: 0, aname: "a", nuname: 1000)
        try c.attach(fid: 1, aname: "b", nuname: 1000)
        try c.walk(0, 10, [])
        #expect(errnoOf { try c.lcreate(10, "as-user", gid: 1000) } == LinuxErrno.EACCES)
        try c.walk(1, 11, [])
        _ = try c.lcreate(11, "given-away", mode: 0o640, gid: 1000)
        let made = try #require(lstatOf(s("b/given-away")))
        #expect(made.st_uid == 1000 && made.st_gid == 1000 && made.st_mode & 0o777 == 0o640)
        #expect(!exists(s("a/as-user")))
        // Back on a after b: the worker is the user again, not root.
        try c.walk(0, 12, [])
        #expect(errnoOf { try c.lcreate(12, "as-user-again", gid: 1000) } == LinuxErrno.EACCES)
    }

    @Test func allowedUsersArePerExport() throws {
        let s = try Self.twoExports { a, _ in a.allowedUsers = [1000] }
        defer { s.shutdown() }
        let c = try s.client()
        try c.version()
        #expect(errnoOf { try c.attach(fid: 0, aname: "a", nuname: 2000) } == LinuxErrno.EACCES)
        try c.attach(fid: 0, aname: "a", nuname: 1000)
        try c.attach(fid: 1, aname: "b", nuname: 2000)
    }

    @Test func dotDotStopsAtTheRootOfTheAttachedExport() throws {
        // "inner" is a directory inside "a": attached by its own name, its root is the top.
        let s = try Self.twoExports { a, b in
            makeDirectory(a.path + "/inner")
            makeFile(a.path + "/inner/in-inner", Array("file of inner".utf8))
            b = ExportConfiguration(name: "inner", path: a.path + "/inner")
        }
        defer { s.shutdown() }
        let c = try s.client()
        try c.version()
        let aRoot = try c.attach(fid: 0, aname: "a")
        let innerRoot = try c.attach(fid: 1, aname: "inner")
        #expect(aRoot != innerRoot)

        // From inner's root, ".." is inner's root, and a's files are out of reach.
        #expect(try c.walk(1, 2, ["..", ".."]) == [innerRoot, innerRoot])
        #expect(try c.getattr(2).qid == innerRoot)
        #expect(try c.walk(1, 3, ["..", "in-a"]) == [innerRoot])
        #expect(errnoOf { try c.getattr(3) } == LinuxErrno.EBADF)
        #expect(try Self.read(c, root: 2, "in-inner", fid: 4) == "file of inner")

        // From a, the same directory is a plain one: ".." leads back to a's root.
        let walked = try c.walk(0, 5, ["inner", ".."])
        #expect(walked.last == aRoot)
        #expect(try c.walk(0, 6, [".."]) == [aRoot])
    }

    @Test func replacingExportsChangesNewAttachesOnly() throws {
        let s = try Self.twoExports()
        defer { s.shutdown() }
        let top = s.path
        makeDirectory("\(top)/c")
        makeFile("\(top)/c/in-c", Array("file of c".utf8))
        let before = try s.client()
        try before.version()
        try before.attach(fid: 0, aname: "a")
        try before.attach(fid: 1, aname: "b")

        // a becomes read-only, b goes, c comes.
        var a = ExportConfiguration(name: "a", path: "\(top)/a")
        a.readOnly = true
        let changes = try s.server.replaceExports([a, ExportConfiguration(name: "c", path: "\(top)/c")])
        #expect(changes.added == ["c"] && changes.removed == ["b"] && changes.changed == ["a"])
        #expect(changes.description == "exports added c; removed b; changed a")

        let after = try s.client()
        try after.version()
        #expect(errnoOf { try after.attach(fid: 1, aname: "b") } == LinuxErrno.ENOENT)
        try after.attach(fid: 2, aname: "c")
        #expect(try Self.read(after, root: 2, "in-c", fid: 10) == "file of c")
        try after.attach(fid: 0, aname: "a")
        try after.walk(0, 11, [])
        #expect(errnoOf { try after.lcreate(11, "new") } == LinuxErrno.EROFS)

        // The session from before keeps a read-write and b attached, fids walked from them too.
        try before.walk(0, 12, [])
        _ = try before.lcreate(12, "still-writable")
        #expect(try before.write(12, offset: 0, Array("kept".utf8)) == 4)
        try before.clunk(12)
        #expect(fileBytes(s("a/still-writable")) == Array("kept".utf8))
        #expect(try Self.read(before, root: 1, "in-b", fid: 13) == "file of b")
        try before.walk(1, 14, [])
        #expect(errnoOf { try before.lcreate(14, "b-was-read-only") } == LinuxErrno.EROFS)
        // A new attach on the old connection gets the new list.
        #expect(errnoOf { try before.attach(fid: 15, aname: "b") } == LinuxErrno.ENOENT)
    }

    @Test func aReplacementThatCannotBeOpenedChangesNothing() throws {
        let s = try Self.twoExports()
        defer { s.shutdown() }
        let top = s.path
        let missing = ExportConfiguration(name: "gone", path: "\(top)/no-such-directory")
        #expect(throws: ServerStartError.self) {
            try s.server.replaceExports([ExportConfiguration(name: "a", path: "\(top)/a"), missing])
        }
        #expect(throws: ServerStartError.self) {
            try s.server.replaceExports([ExportConfiguration(name: "a", path: "\(top)/a"), ExportConfiguration(name: "a", path: "\(top)/b")])
        }
        #expect(throws: ServerStartError.self) {
            try s.server.replaceExports([ExportConfiguration(name: "../x", path: "\(top)/a")])
        }
        #expect(throws: ServerStartError.self) { try s.server.replaceExports([]) }
        #expect(s.server.exports.map(\.name) == ["a", "b"])
        let c = try s.client()
        try c.version()
        try c.attach(fid: 0, aname: "b")
        try c.walk(0, 1, [])
        #expect(errnoOf { try c.lcreate(1, "x") } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.attach(fid: 2, aname: "gone") } == LinuxErrno.ENOENT)
    }
}
