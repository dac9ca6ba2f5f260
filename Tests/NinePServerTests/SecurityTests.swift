import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// Confinement, name validation, read-only exports and identities.
@Suite struct SecurityTests {
    @Test func aSymlinkToEtcIsNeverWalkedThrough() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        #expect(Glibc.symlink("/etc", s("etc-link")) == 0)
        let c = try s.session()

        // In one walk: the walk stops at the symlink and no fid is made.
        let qids = try c.walk(0, 1, ["etc-link", "passwd"])
        #expect(qids.count == 1)
        #expect(qids.first?.isSymlink == true)
        #expect(errnoOf { try c.getattr(1) } == LinuxErrno.EBADF)

        // Step by step: the symlink itself is a fid; walking from it is ENOTDIR.
        let link = try c.walk(0, 2, ["etc-link"])
        #expect(link.first?.isSymlink == true)
        #expect(errnoOf { try c.walk(2, 3, ["passwd"]) } == LinuxErrno.ENOTDIR)
        #expect(errnoOf { try c.walk(2, 3, ["..", "etc"]) } != nil)
        #expect(try c.getattr(2).mode & Mode.typeMask == Mode.symlink)
        #expect(try c.readlink(2) == "/etc")

        // ".." never climbs out of the export.
        let up = try c.walk(0, 4, ["..", "..", "etc", "passwd"])
        let root = try c.getattr(0).qid
        #expect(up == [root, root])
        #expect(errnoOf { try c.getattr(4) } == LinuxErrno.EBADF)
    }

    /// A directory moved out of the export while a client holds a fid in it: ".." must not
    /// lead to the outside.
    @Test func dotDotFromADirectoryMovedOutsideIsRefused() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let outside = try TempDirectory(prefix: "ninep-outside")
        makeFile(outside("outside-secret"), [6])
        makeDirectory(s("d"))
        makeDirectory(s("d/e"))
        let c = try s.session()
        try c.walk(0, 1, ["d", "e"])
        #expect(Glibc.rename(s("d"), outside("d")) == 0)
        // From e, ".." is d (now outside) and "../.." the outside directory itself.
        let up = try? c.walk(1, 2, ["..", "..", "outside-secret"])
        #expect(up == nil || up!.isEmpty, "walked \(up ?? []) out of the export")
        #expect(errnoOf { try c.getattr(2) } == LinuxErrno.EBADF)
        #expect(errnoOf { try c.walk(1, 3, [".."]) } == LinuxErrno.EACCES)
    }

    @Test func lopenOfASymlinkIsELOOP() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("target"), Array("inside".utf8))
        #expect(Glibc.symlink("target", s("rel")) == 0)
        #expect(Glibc.symlink("/etc/passwd", s("abs")) == 0)
        let c = try s.session()
        try c.walk(0, 1, ["rel"])
        try c.walk(0, 2, ["abs"])
        #expect(errnoOf { try c.lopen(1, OpenFlags.readOnly) } == LinuxErrno.ELOOP)
        #expect(errnoOf { try c.lopen(2, OpenFlags.readOnly) } == LinuxErrno.ELOOP)
        #expect(errnoOf { try c.lopen(2, OpenFlags.readWrite | OpenFlags.truncate) } == LinuxErrno.ELOOP)
    }

    @Test func operationsOnASymlinkFidNeverReachItsTarget() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let outside = try TempDirectory(prefix: "ninep-outside")
        let secret = Array("outside secret".utf8)
        makeFile(outside("victim"), secret, mode: 0o644)
        let before = lstatOf(outside("victim"))!
        #expect(Glibc.symlink(outside("victim"), s("out")) == 0)
        let c = try s.session()
        try c.walk(0, 1, ["out"])

        _ = errnoOf { try c.setattr(1, SetattrFields(valid: SetattrValid.size, size: 0)) }
        _ = errnoOf { try c.setattr(1, SetattrFields(valid: SetattrValid.mode, mode: 0o777)) }
        _ = errnoOf {
            try c.setattr(1, SetattrFields(valid: SetattrValid.mtime | SetattrValid.mtimeSet, mtimeSeconds: 1))
        }
        try c.walk(1, 2, [])
        if errnoOf({ try c.xattrcreate(2, "user.evil", size: 1, flags: 0) }) == nil {
            _ = errnoOf { try c.write(2, offset: 0, [1]) }
            _ = errnoOf { try c.clunk(2) }
        }
        _ = errnoOf { try c.link(0, 1, "hard") }

        let after = lstatOf(outside("victim"))!
        #expect(fileBytes(outside("victim")) == secret)
        #expect(after.st_mode == before.st_mode)
        #expect(after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec)
        #expect(after.st_nlink == 1)
        #expect(xattrValue(outside("victim"), "user.evil").value == nil)
        if let hard = lstatOf(s("hard")) {
            #expect(hard.st_ino != before.st_ino, "a hard link to a file outside the export was made")
        }
    }

    @Test func lcreateOnADanglingSymlinkCreatesNothingOutside() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let outside = try TempDirectory(prefix: "ninep-outside")
        #expect(Glibc.symlink(outside("created-by-9p"), s("dangling")) == 0)
        let c = try s.session()
        try c.walk(0, 1, [])
        #expect(errnoOf { try c.lcreate(1, "dangling", flags: OpenFlags.readWrite) } != nil)
        #expect(!exists(outside("created-by-9p")))
        // The failed create leaves the fid as it was: still the directory.
        #expect(try c.getattr(1).qid.isDirectory)
        #expect(errnoOf { try c.mkdir(0, "dangling") } == LinuxErrno.EEXIST)
        #expect(errnoOf { try c.mknod(0, "dangling", mode: Mode.fifo | 0o644) } == LinuxErrno.EEXIST)
        #expect(!exists(outside("created-by-9p")))
        #expect(lstatOf(s("dangling")).map { UInt32($0.st_mode) & Mode.typeMask } == Mode.symlink)
    }

    @Test func namesWithSlashOrDotsAreRejected() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("f"))
        makeDirectory(s("d"))
        let c = try s.session()
        try c.walk(0, 1, ["f"])
        let bad = ["a/b", "/", ".", "..", "", "/etc/passwd", "../escape", "a\u{0}b"]
        for name in bad {
            try c.walk(0, 2, [])
            #expect(errnoOf { try c.lcreate(2, name) } == LinuxErrno.EINVAL, "lcreate \(name.debugDescription)")
            try c.clunk(2)
            #expect(errnoOf { try c.mkdir(0, name) } == LinuxErrno.EINVAL, "mkdir \(name.debugDescription)")
            #expect(errnoOf { try c.symlink(0, name, target: "x") } == LinuxErrno.EINVAL, "symlink \(name.debugDescription)")
            #expect(errnoOf { try c.mknod(0, name, mode: Mode.fifo | 0o644) } == LinuxErrno.EINVAL, "mknod \(name.debugDescription)")
            #expect(errnoOf { try c.link(0, 1, name) } == LinuxErrno.EINVAL, "link \(name.debugDescription)")
            #expect(errnoOf { try c.renameat(0, "f", 0, name) } == LinuxErrno.EINVAL, "renameat to \(name.debugDescription)")
            #expect(errnoOf { try c.renameat(0, name, 0, "x") } == LinuxErrno.EINVAL, "renameat from \(name.debugDescription)")
            #expect(errnoOf { try c.unlinkat(0, name) } == LinuxErrno.EINVAL, "unlinkat \(name.debugDescription)")
            #expect(errnoOf { try c.unlinkat(0, name, flags: UnlinkFlags.removeDir) } == LinuxErrno.EINVAL, "rmdir \(name.debugDescription)")
            #expect(errnoOf { try c.rename(1, 0, name) } == LinuxErrno.EINVAL, "rename \(name.debugDescription)")
            if name != ".." {
                #expect(errnoOf { try c.walk(0, 3, [name]) } == LinuxErrno.EINVAL, "walk \(name.debugDescription)")
            }
        }
        // Nothing moved or vanished.
        #expect(exists(s("f")) && exists(s("d")))
        var entries = 0
        if let dir = opendir(s.path) {
            while Glibc.readdir(dir) != nil { entries += 1 }
            closedir(dir)
        }
        #expect(entries == 4)
    }

    @Test func namesLongerThan255BytesAreENAMETOOLONG() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("f"))
        let c = try s.session()
        let long = String(repeating: "n", count: 256)
        let longest = String(repeating: "n", count: 255)
        try c.walk(0, 1, [])
        #expect(errnoOf { try c.lcreate(1, long) } == LinuxErrno.ENAMETOOLONG)
        #expect(errnoOf { try c.mkdir(0, long) } == LinuxErrno.ENAMETOOLONG)
        #expect(errnoOf { try c.walk(0, 2, [long]) } == LinuxErrno.ENAMETOOLONG)
        #expect(errnoOf { try c.renameat(0, "f", 0, long) } == LinuxErrno.ENAMETOOLONG)
        #expect(errnoOf { try c.symlink(0, long, target: "x") } == LinuxErrno.ENAMETOOLONG)
        #expect(errnoOf { try c.unlinkat(0, long) } == LinuxErrno.ENAMETOOLONG)
        // 255 is allowed.
        try c.mkdir(0, longest)
        #expect(try c.walk(0, 3, [longest]).count == 1)
    }

    @Test func aReadOnlyExportRefusesEveryChange() throws {
        let s = try TestServer { $0.readOnly = true }
        defer { s.shutdown() }
        makeFile(s("f"), [1, 2, 3])
        makeDirectory(s("d"))
        let c = try s.session()
        try c.walk(0, 1, [])
        #expect(errnoOf { try c.lcreate(1, "new") } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.mkdir(0, "newdir") } == LinuxErrno.EROFS)
        try c.walk(0, 2, ["f"])
        #expect(errnoOf { try c.lopen(2, OpenFlags.writeOnly) } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.lopen(2, OpenFlags.readWrite) } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.lopen(2, OpenFlags.readOnly | OpenFlags.truncate) } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.setattr(2, SetattrFields(valid: SetattrValid.size, size: 0)) } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.setattr(2, SetattrFields(valid: SetattrValid.mode, mode: 0o777)) } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.unlinkat(0, "f") } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.unlinkat(0, "d", flags: UnlinkFlags.removeDir) } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.renameat(0, "f", 0, "g") } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.symlink(0, "ln", target: "f") } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.mknod(0, "p", mode: Mode.fifo | 0o644) } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.link(0, 2, "hard") } == LinuxErrno.EROFS)
        try c.walk(0, 3, ["f"])
        #expect(errnoOf { try c.xattrcreate(3, "user.x", size: 1, flags: 0) } == LinuxErrno.EROFS)
        #expect(errnoOf { try c.remove(3) } == LinuxErrno.EROFS)
        // Reading still works, and nothing changed.
        try c.lopen(2, OpenFlags.readOnly)
        #expect(try c.read(2, offset: 0, count: 10) == [1, 2, 3])
        #expect(fileBytes(s("f")) == [1, 2, 3])
        #expect(exists(s("d")) && !exists(s("new")) && !exists(s("g")))
    }

    @Test func filesCreatedByAnotherUserBelongToThatUser() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        chmod(s.path, 0o777)
        let c = try s.session(uid: 1000)
        try c.walk(0, 1, [])
        try c.lcreate(1, "mine", flags: OpenFlags.readWrite, mode: 0o644, gid: 1000)
        try c.write(1, offset: 0, [1])
        try c.mkdir(0, "mydir", mode: 0o755, gid: 1000)
        try c.symlink(0, "mylink", target: "mine", gid: 1000)
        for name in ["mine", "mydir", "mylink"] {
            let st = lstatOf(s(name))
            #expect(st?.st_uid == 1000, "\(name) owner")
            #expect(st?.st_gid == 1000, "\(name) group")
        }
        // A user cannot give a file away.
        try c.walk(0, 2, ["mine"])
        #expect(errnoOf { try c.setattr(2, SetattrFields(valid: SetattrValid.uid, uid: 0)) } == LinuxErrno.EPERM)
    }

    /// Tlcreate/Tmkdir/Tsymlink/Tmknod carry the new file's gid, the creating process's fsgid as
    /// its kernel decided (its groups, or a setgid directory's group): it is trusted as the uid
    /// is, also for a group the server does not list for that user (issue 12: "uid 65534 with
    /// fsgid 65533 fails with EPERM"). A setgid bit on a non-directory in such a group is dropped,
    /// as Linux drops it for a creator outside the group.
    @Test func newFilesGetTheGroupTheClientNames() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        chmod(s.path, 0o777)
        let c = try s.session(uid: 1000)
        try c.walk(0, 1, [])
        try c.lcreate(1, "sgid", flags: OpenFlags.readWrite, mode: 0o2755, gid: 4242)
        try c.mkdir(0, "dir", mode: 0o2775, gid: 4242)
        try c.symlink(0, "ln", target: "x", gid: 4242)
        try c.mknod(0, "p", mode: Mode.fifo | 0o2666, gid: 4242)
        for name in ["sgid", "dir", "ln", "p"] {
            let st = lstatOf(s(name))
            #expect(st?.st_uid == 1000, "\(name) owner")
            #expect(st?.st_gid == 4242, "\(name) group")
        }
        #expect((lstatOf(s("sgid"))?.st_mode ?? 0) & 0o2000 == 0, "setgid kept on a file of a group the user is not in")
        #expect((lstatOf(s("p"))?.st_mode ?? 0) & 0o2000 == 0, "setgid kept on a fifo of a group the user is not in")
        // In its own group the setgid bit stays.
        try c.walk(0, 2, [])
        try c.lcreate(2, "own", flags: OpenFlags.readWrite, mode: 0o2755, gid: 1000)
        #expect(lstatOf(s("own"))?.st_gid == 1000)
        #expect((lstatOf(s("own"))?.st_mode ?? 0) & 0o7777 == 0o2755)
        // Root may name any group and keeps the bit.
        let root = try s.session()
        try root.walk(0, 1, [])
        try root.lcreate(1, "rootfile", flags: OpenFlags.readWrite, mode: 0o2755, gid: 4321)
        #expect(lstatOf(s("rootfile"))?.st_gid == 4321)
        #expect((lstatOf(s("rootfile"))?.st_mode ?? 0) & 0o7777 == 0o2755)
    }

    /// A worker acting for a user keeps the capabilities that are not file-system ones
    /// (CAP_SYS_ADMIN, CAP_SETFCAP): the server must not let that user set trusted.* or
    /// security.* attributes (security.capability on their own program is root on the host).
    @Test func aUserCannotSetPrivilegedXattrs() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        chmod(s.path, 0o777)
        makeFile(s("rootfile"), [1])
        #expect(xattrValue(s("rootfile"), "trusted.hidden").value == nil)
        let root = try s.session()
        try root.walk(0, 1, ["rootfile"])
        try root.walk(1, 2, [])
        try root.xattrcreate(2, "trusted.hidden", size: 3, flags: 0)
        try root.write(2, offset: 0, [1, 2, 3])
        try root.clunk(2)
        #expect(xattrValue(s("rootfile"), "trusted.hidden").value == [1, 2, 3])

        let c = try s.session(uid: 1000)
        try c.walk(0, 1, [])
        try c.lcreate(1, "prog", flags: OpenFlags.readWrite, mode: 0o755, gid: 1000)
        try c.clunk(1)
        try c.walk(0, 2, ["prog"])
        // struct vfs_cap_data, revision 2, permitted = CAP_SETUID.
        let capability = le32(0x0200_0000) + le32(1 << 7) + le32(0) + le32(0) + le32(0)
        for (name, value) in [("security.capability", capability), ("trusted.x", [UInt8(1)]), ("security.evil", [UInt8(1)])] {
            try c.walk(2, 3, [])
            if let e = errnoOf({ try c.xattrcreate(3, name, size: UInt64(value.count), flags: 0) }) {
                #expect(e == LinuxErrno.EPERM, "\(name)")
                try c.clunk(3)
            } else {
                _ = errnoOf { try c.write(3, offset: 0, value) }
                #expect(errnoOf { try c.clunk(3) } == LinuxErrno.EPERM, "\(name) was set")
            }
            #expect(xattrValue(s("prog"), name).value == nil, "\(name) was set")
        }
        // Its own user.* attributes are fine.
        try c.walk(2, 4, [])
        try c.xattrcreate(4, "user.mine", size: 1, flags: 0)
        try c.write(4, offset: 0, [7])
        try c.clunk(4)
        #expect(xattrValue(s("prog"), "user.mine").value == [7])
        // trusted.* is invisible to the user, as to any unprivileged caller.
        try c.walk(0, 5, ["rootfile"])
        #expect(errnoOf { try c.xattrwalk(5, 6, "trusted.hidden") } == LinuxErrno.ENODATA)
        let size = try c.xattrwalk(5, 7, "")
        let names = try c.read(7, offset: 0, count: UInt32(max(size, 1))).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        #expect(!names.contains("trusted.hidden"))
        // Root still sees it.
        #expect(try root.xattrwalk(1, 3, "trusted.hidden") == 3)
    }

    @Test func allowedUsersAndSquash() throws {
        let allowed = try TestServer { $0.allowedUsers = [1000] }
        defer { allowed.shutdown() }
        let c = try allowed.client()
        try c.version()
        #expect(errnoOf { try c.attach(fid: 0, nuname: 0) } == LinuxErrno.EACCES)
        try c.attach(fid: 1, nuname: 1000)

        let squashed = try TestServer { $0.squashUser = (uid: 1000, gid: 1000) }
        defer { squashed.shutdown() }
        chmod(squashed.path, 0o777)
        let r = try squashed.session(uid: 0)
        try r.walk(0, 1, [])
        try r.lcreate(1, "f", flags: OpenFlags.readWrite, mode: 0o644, gid: 1000)
        #expect(lstatOf(squashed("f"))?.st_uid == 1000)
        #expect(lstatOf(squashed("f"))?.st_gid == 1000)
        // Every file of a squashed export belongs to the squash user and group, whatever the
        // request names.
        try r.mkdir(0, "rootgroup", gid: 0)
        #expect(lstatOf(squashed("rootgroup"))?.st_uid == 1000)
        #expect(lstatOf(squashed("rootgroup"))?.st_gid == 1000)
    }

    @Test func anotherUserCannotOpenRootsPrivateFile() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        chmod(s.path, 0o755)
        makeFile(s("private"), Array("root only".utf8), mode: 0o600)
        makeFile(s("public"), Array("everyone".utf8), mode: 0o644)
        makeDirectory(s("closed"), mode: 0o700)
        makeFile(s("closed/inner"), [1], mode: 0o644)
        let user = try s.session(uid: 1000)
        let root = try s.session(uid: 0)
        // Alternate between the two users so that workers switch identity back and forth.
        for round in 0..<4 {
            let u = UInt32(10 + round * 10)
            try user.walk(0, u, ["private"])
            #expect(errnoOf { try user.lopen(u, OpenFlags.readOnly) } == LinuxErrno.EACCES)
            try user.walk(0, u + 1, ["public"])
            try user.lopen(u + 1, OpenFlags.readOnly)
            #expect(try user.read(u + 1, offset: 0, count: 100) == Array("everyone".utf8))
            #expect(errnoOf { try user.lopen(u + 1, OpenFlags.readOnly) } == LinuxErrno.EBADF)
            // Into a directory without search permission: the walk stops before it.
            #expect(try user.walk(0, u + 2, ["closed", "inner"]).count == 1)
            try user.walk(0, u + 3, ["closed"])
            #expect(errnoOf { try user.walk(u + 3, u + 4, ["inner"]) } == LinuxErrno.EACCES)
            #expect(errnoOf { try user.lcreate(u, "x") } != nil)  // not a directory fid

            try root.walk(0, u, ["private"])
            try root.lopen(u, OpenFlags.readOnly)
            #expect(try root.read(u, offset: 0, count: 100) == Array("root only".utf8))
            #expect(try root.walk(0, u + 1, ["closed", "inner"]).count == 2)
        }
        // The user cannot write into a directory it does not own.
        #expect(errnoOf { try user.mkdir(0, "nope", gid: 1000) } == LinuxErrno.EACCES)
        #expect(errnoOf { try user.unlinkat(0, "public") } == LinuxErrno.EACCES)
        #expect(exists(s("public")) && !exists(s("nope")))
    }
}
