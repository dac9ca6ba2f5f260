import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// A fid opened for I/O is the client's open file: attribute changes act on its descriptor
/// (as fchmod, fchown, ftruncate and futimens do), and it cannot be walked elsewhere.
@Suite struct OpenFidTests {
    /// What the Linux client sends for truncate(2) and ftruncate(2): size, with mtime and
    /// ctime "now".
    static func truncation(to size: UInt64) -> SetattrFields {
        SetattrFields(valid: SetattrValid.size | SetattrValid.mtime | SetattrValid.ctime, size: size)
    }

    @Test func setattrOnAnOpenFidActsOnItsDescriptor() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        chmod(s.path, 0o777)
        makeFile(s("shared"), pseudoRandomBytes(4096, seed: 1), mode: 0o666)
        var old = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, s("shared"), &old, 0) == 0)
        let c = try s.session(uid: 1000)

        // Root's file, writable by everyone, open read-write by user 1000: ftruncate(2) needs
        // nothing more, and the truncation itself sets mtime (no owner check).
        try c.walk(0, 1, ["shared"])
        try c.lopen(1, OpenFlags.readWrite)
        try c.setattr(1, Self.truncation(to: 100))
        let shared = try #require(lstatOf(s("shared")))
        #expect(shared.st_size == 100)
        #expect(shared.st_mtim.tv_sec > 1_000_000_000)
        // Setting times explicitly still takes the owner, as utimensat(2) does.
        let explicit = SetattrFields(valid: SetattrValid.mtime | SetattrValid.mtimeSet, mtimeSeconds: 1_200_000_000)
        #expect(errnoOf { try c.setattr(1, explicit) } == LinuxErrno.EPERM)

        // A file created with mode 0 and open read-write: truncated through its fid, while
        // truncate(2) by name (an unopened fid) is refused.
        try c.walk(0, 2, [])
        try c.lcreate(2, "private", flags: OpenFlags.readWrite, mode: 0, gid: 1000)
        try c.write(2, offset: 0, [1, 2, 3, 4])
        try c.setattr(2, Self.truncation(to: 2))
        #expect(fileBytes(s("private")) == [1, 2])
        try c.walk(0, 3, ["private"])
        #expect(errnoOf { try c.setattr(3, Self.truncation(to: 0)) } == LinuxErrno.EACCES)
        #expect(fileBytes(s("private")) == [1, 2])
        // Mode, owner and times through the open descriptor.
        try c.setattr(2, SetattrFields(valid: SetattrValid.mode, mode: 0o640))
        #expect(lstatOf(s("private")).map { UInt32($0.st_mode) & 0o7777 } == 0o640)
        try c.setattr(2, SetattrFields(valid: SetattrValid.gid, gid: 1000))
        #expect(errnoOf { try c.setattr(2, SetattrFields(valid: SetattrValid.uid, uid: 0)) } == LinuxErrno.EPERM)
        try c.setattr(2, explicit)
        #expect(lstatOf(s("private"))?.st_mtim.tv_sec == 1_200_000_000)

        // Open read-only, the fid's descriptor cannot truncate: truncate(2) by name decides.
        makeFile(s("readonly"), [9, 9, 9], mode: 0o644)
        try c.walk(0, 4, ["readonly"])
        try c.lopen(4, OpenFlags.readOnly)
        #expect(errnoOf { try c.setattr(4, Self.truncation(to: 0)) } == LinuxErrno.EACCES)
        #expect(fileBytes(s("readonly")) == [9, 9, 9])
    }

    /// walk(5): "fid must not have been opened". Walked onto itself, an open fid would name
    /// another file while its descriptor still reads the first: EBADF. Walks from it into a
    /// new fid stay allowed: the Linux client makes them (it clones and walks from the open
    /// fids it finds on an inode), and they leave the open fid as it was.
    @Test func anOpenFidCannotBeWalkedOntoItself() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeDirectory(s("d"))
        makeFile(s("d/f"), [1, 2, 3])
        let c = try s.session()
        try c.walk(0, 1, ["d"])
        let directory = try c.lopen(1, OpenFlags.readOnly)
        #expect(errnoOf { try c.walk(1, 1, ["f"]) } == LinuxErrno.EBADF)
        #expect(errnoOf { try c.walk(1, 1, [".."]) } == LinuxErrno.EBADF)
        // Still the open directory, reading as before.
        #expect(try c.getattr(1).qid == directory)
        #expect(try c.readdir(1, offset: 0, count: 4096).contains { $0.name == "f" })

        try c.walk(0, 2, ["d", "f"])
        let file = try c.lopen(2, OpenFlags.readOnly)
        #expect(errnoOf { try c.walk(2, 2, [".."]) } == LinuxErrno.EBADF)
        #expect(try c.getattr(2).qid == file)
        #expect(try c.read(2, offset: 0, count: 10) == [1, 2, 3])

        // nwname 0 onto itself changes nothing; into a new fid, a clone and a walk.
        #expect(try c.walk(1, 1, []).isEmpty)
        try c.walk(2, 3, [])
        #expect(try c.getattr(3).qid == file)
        #expect(try c.walk(1, 4, ["f"]) == [file])
        #expect(try c.lopen(4, OpenFlags.readOnly) == file)
    }
}
