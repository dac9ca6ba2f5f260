import Glibc
import NinePServer
import NinePWire
import Testing

/// The unix-socket listener (the `trans=unix` mount), its permissions, and device nodes.
@Suite struct UnixSocketTests {
    @Test func servesOverAUnixSocketWithTheGivenMode() throws {
        let sockets = try TempDirectory(prefix: "ninep-unix")
        let path = sockets("ninepd.sock")
        let s = try TestServer { configuration in
            configuration.listen.append(.unix(path: path))
            configuration.socketMode = 0o600
        }
        defer { s.shutdown() }
        var st = stat()
        #expect(lstat(path, &st) == 0)
        #expect(st.st_mode & S_IFMT == S_IFSOCK, "the listener is not a socket")
        #expect(st.st_mode & 0o777 == 0o600, "socket mode \(String(st.st_mode & 0o777, radix: 8)), want 600")

        makeFile(s("hello.txt"), Array("over a unix socket".utf8))
        let c = try RawClient(unixPath: path)
        try c.version()
        try c.attach(fid: 0, nuname: 0)
        try c.walk(0, 1, ["hello.txt"])
        try c.lopen(1, OpenFlags.readOnly)
        #expect(try c.read(1, offset: 0, count: 100) == Array("over a unix socket".utf8))
        #expect(try c.getattr(1).size == 18)
    }

    @Test func mknodMakesDevicesAsRoot() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        // /dev/null's numbers: character device 1,3.
        _ = try c.mknod(0, "null", mode: 0o020000 | 0o666, major: 1, minor: 3)
        var st = stat()
        #expect(lstat(s("null"), &st) == 0)
        #expect(st.st_mode & S_IFMT == S_IFCHR)
        // glibc's dev_t layout: major in bits 8-19 (and 32-43), minor in bits 0-7 (and 20-31).
        let rdev = UInt64(st.st_rdev)
        #expect((rdev >> 8) & 0xfff == 1 && rdev & 0xff == 3, "rdev \(rdev)")
        try c.walk(0, 1, ["null"])
        let attributes = try c.getattr(1)
        #expect(attributes.rdev == UInt64(st.st_rdev), "Rgetattr rdev \(attributes.rdev), host \(st.st_rdev)")
    }
}
