import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// `--access client` (issue 12, class 3): requests run with the server's privileges, new files
/// get the attaching user as owner and exactly the group and mode the request names, and
/// permission checks are the client kernel's.
@Suite struct AccessClientTests {
    @Test func newFilesBelongToTheAttachingUserWithTheRequestedGroupAndMode() throws {
        let s = try TestServer { $0.access = .client }
        defer { s.shutdown() }
        chmod(s.path, 0o755)
        let c = try s.session(uid: 1000)
        try c.walk(0, 1, [])
        try c.lcreate(1, "f", flags: OpenFlags.readWrite, mode: 0o4755, gid: 4242)
        try c.mkdir(0, "d", mode: 0o777, gid: 4242)
        try c.mknod(0, "p", mode: Mode.fifo | 0o666, gid: 4242)
        try c.symlink(0, "l", target: "f", gid: 4242)
        for (name, mode) in [("f", 0o4755), ("d", 0o777), ("p", 0o666)] as [(String, mode_t)] {
            let st = lstatOf(s(name))
            #expect(st?.st_uid == 1000 && st?.st_gid == 4242, "\(name): owner \(st?.st_uid ?? 0):\(st?.st_gid ?? 0)")
            #expect((st?.st_mode ?? 0) & 0o7777 == mode, "\(name): mode \(String((st?.st_mode ?? 0) & 0o7777, radix: 8))")
        }
        #expect(lstatOf(s("l"))?.st_uid == 1000 && lstatOf(s("l"))?.st_gid == 4242)
        // A subdirectory of a setgid directory keeps the bit the kernel gave it.
        makeDirectory(s("g"))
        chmod(s("g"), 0o2777)
        try c.walk(0, 2, ["g"])
        try c.mkdir(2, "sub", mode: 0o755, gid: 4242)
        #expect((lstatOf(s("g/sub"))?.st_mode ?? 0) & 0o7777 == 0o2755)
    }

    @Test func anExistingFileIsOpenedNotGivenAway() throws {
        let s = try TestServer { $0.access = .client }
        defer { s.shutdown() }
        makeFile(s("existing"), [1, 2, 3], mode: 0o644)
        let c = try s.session(uid: 1000)
        try c.walk(0, 1, [])
        try c.lcreate(1, "existing", flags: OpenFlags.readWrite, mode: 0o600, gid: 1000)
        #expect(lstatOf(s("existing"))?.st_uid == 0)
        #expect((lstatOf(s("existing"))?.st_mode ?? 0) & 0o7777 == 0o644)
    }

    /// The trust model, stated as a test: the server does not check, the client's kernel does.
    @Test func theServerLeavesPermissionChecksToTheClient() throws {
        let s = try TestServer { $0.access = .client }
        defer { s.shutdown() }
        makeFile(s("private"), Array("root only".utf8), mode: 0o600)
        let c = try s.session(uid: 1000)
        try c.walk(0, 1, ["private"])
        try c.lopen(1, OpenFlags.readOnly)
        #expect(try c.read(1, offset: 0, count: 100) == Array("root only".utf8))
    }
}
