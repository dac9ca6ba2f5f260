import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// Tlcreate, Tmkdir and Tmknod carry a mode the client has umasked already (the Linux client
/// applies the process's umask, or the default ACL, before it sends): the server creates with
/// exactly that mode. The server runs in the test process, whose umask (022 as a rule) would
/// mask it a second time.
@Suite struct CreationModeTests {
    func permissions(_ path: String) -> UInt32? {
        lstatOf(path).map { UInt32($0.st_mode) & 0o7777 }
    }

    @Test func modesAreCreatedExactlyAsSent() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        try c.walk(0, 1, [])
        try c.lcreate(1, "f", flags: OpenFlags.readWrite, mode: 0o620)
        #expect(permissions(s("f")) == 0o620)
        try c.walk(0, 2, [])
        try c.lcreate(2, "shared", flags: OpenFlags.readWrite, mode: 0o666)
        #expect(permissions(s("shared")) == 0o666)
        try c.mkdir(0, "d", mode: 0o777)
        #expect(permissions(s("d")) == 0o777)
        try c.mkdir(0, "t", mode: 0o1777)
        #expect(permissions(s("t")) == 0o1777)
        try c.mknod(0, "p", mode: Mode.fifo | 0o666)
        #expect(permissions(s("p")) == 0o666)

        // The same for a user other than root (another worker identity, same rule).
        chmod(s.path, 0o777)
        let user = try s.session(uid: 1000)
        try user.walk(0, 1, [])
        try user.lcreate(1, "group-writable", flags: OpenFlags.readWrite, mode: 0o664, gid: 1000)
        #expect(permissions(s("group-writable")) == 0o664)
        try user.mkdir(0, "open", mode: 0o777, gid: 1000)
        #expect(permissions(s("open")) == 0o777)
    }

    /// The server's umask is its workers' own: the process's (which an embedding program and
    /// unix sockets' modes go by) stays what it was.
    @Test func theProcessUmaskIsLeftAlone() throws {
        let before = processUmask()
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        try c.mkdir(0, "d", mode: 0o777)
        #expect(before != nil && processUmask() == before)
    }

    /// The "Umask:" line of /proc/self/status (umask(2) can only read it by changing it).
    func processUmask() -> String? {
        guard let bytes = fileBytes("/proc/self/status") else { return nil }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("Umask:") }.map(String.init)
    }
}
