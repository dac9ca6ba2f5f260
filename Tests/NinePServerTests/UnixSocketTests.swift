import Glibc
import Logging
import NinePServer
import NinePTestSupport
import NinePTransport
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
        let c = try WireClient(unixPath: path)
        try c.version()
        try c.attach(fid: 0, nuname: 0)
        try c.walk(0, 1, ["hello.txt"])
        try c.lopen(1, OpenFlags.readOnly)
        #expect(try c.read(1, offset: 0, count: 100) == Array("over a unix socket".utf8))
        #expect(try c.getattr(1).size == 18)
    }

    /// A second server given a live server's socket path refuses to start and leaves the
    /// socket alone: unlinking it would leave the first server running but unreachable.
    @Test func aLiveSocketIsNotTakenOver() throws {
        let sockets = try TempDirectory(prefix: "ninep-unix-live")
        let path = sockets("ninepd.sock")
        let s = try TestServer { $0.listen.append(.unix(path: path)) }
        defer { s.shutdown() }
        var before = stat()
        #expect(lstat(path, &before) == 0)

        do {
            _ = try Listener(.unix(path: path))
            Issue.record("a second listener took over the live socket at \(path)")
        } catch {
            #expect(error.description == "unix:\(path): another server is accepting connections there; stop it or choose another path")
        }
        // Through the server as ninepd starts it, with the message ninepd logs.
        var configuration = ServerConfiguration(exportPath: s.path, listen: [.unix(path: path)])
        configuration.workerThreads = 1
        configuration.largeBuffers = 1
        do {
            _ = try Server(configuration: configuration, logger: Logger(label: "second-server"))
            Issue.record("a second server started on the live socket at \(path)")
        } catch {
            #expect(error.description == "cannot listen on unix:\(path): another server is accepting connections there; stop it or choose another path")
        }

        var after = stat()
        #expect(lstat(path, &after) == 0, "the live socket was unlinked")
        #expect(after.st_ino == before.st_ino, "the live socket was replaced")
        makeFile(s("still.txt"), Array("served".utf8))
        let c = try WireClient(unixPath: path)
        try c.version()
        try c.attach(fid: 0, nuname: 0)
        try c.walk(0, 1, ["still.txt"])
        #expect(try c.getattr(1).size == 6)
    }

    /// A socket file nobody accepts on (its server died without unlinking it: connect() is
    /// refused) is replaced, so a restart after a crash needs no manual cleanup.
    @Test func aStaleSocketIsReplaced() throws {
        let sockets = try TempDirectory(prefix: "ninep-unix-stale")
        let path = sockets("ninepd.sock")
        let dead = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = unixSocketAddress(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(dead, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0 && listen(dead, 1) == 0)
        Glibc.close(dead)  // the file stays; connect() now gets ECONNREFUSED
        var st = stat()
        #expect(lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK)

        let s = try TestServer { $0.listen.append(.unix(path: path)) }
        defer { s.shutdown() }
        let c = try WireClient(unixPath: path)
        try c.version()
        try c.attach(fid: 0, nuname: 0)
        #expect(try c.getattr(0).qid.isDirectory)
    }

    /// A file that is not a socket is never removed, and the message says what is in the way.
    @Test func aFileThatIsNotASocketIsLeftAlone() throws {
        let sockets = try TempDirectory(prefix: "ninep-unix-file")
        let path = sockets("ninepd.sock")
        makeFile(path, Array("keep me".utf8))
        do {
            _ = try Listener(.unix(path: path))
            Issue.record("a listener bound over the regular file at \(path)")
        } catch {
            #expect(error.description == "unix:\(path): a file that is not a socket is in the way; remove it or choose another path")
        }
        var st = stat()
        #expect(lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFREG && st.st_size == 7)
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
