import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// Tversion, Tattach and Twalk: the session set-up and the walk semantics the kernel relies on.
@Suite struct SessionTests {
    @Test func versionClampsMsizeToTheServerMaximum() throws {
        let s = try TestServer { $0.maxMessageSize = 65536 }
        defer { s.shutdown() }
        let big = try s.client()
        let offered = try big.version(msize: 16 << 20)
        #expect(offered.msize == 65536)
        #expect(offered.version == "9P2000.L")
        // A smaller msize is kept as the client asked.
        let small = try s.client()
        #expect(try small.version(msize: 8192).msize == 8192)
        // The negotiated msize is enforced: a read larger than it is cut to fit.
        try small.attach()
        makeFile(s("f"), pseudoRandomBytes(20000, seed: 1))
        try small.walk(0, 1, ["f"])
        try small.lopen(1, OpenFlags.readOnly)
        #expect(try small.read(1, offset: 0, count: 20000).count == 8192 - NineP.readReplyOverhead)
    }

    @Test func unknownVersionIsAnsweredWithUnknown() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.client()
        #expect(try c.version(version: "9P2000.u").version == "unknown")
        #expect(try c.version(version: "9P2000").version == "unknown")
        // No session was established: requests are refused until a version is agreed.
        #expect(errnoOf { try c.attach() } == LinuxErrno.EPROTO)
        #expect(try c.version().version == "9P2000.L")
        try c.attach()
    }

    @Test func attachAcceptsEmptyAnameAndTheExportPathOnly() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.client()
        try c.version()
        let root = try c.attach(fid: 0, aname: "")
        #expect(root.isDirectory)
        #expect(try c.attach(fid: 1, aname: s.path) == root)
        #expect(try c.attach(fid: 2, aname: s.path + "/") == root)
        #expect(errnoOf { try c.attach(fid: 3, aname: "/nonexistent") } == LinuxErrno.ENOENT)
        #expect(errnoOf { try c.attach(fid: 3, aname: "/") } == LinuxErrno.ENOENT)
        #expect(errnoOf { try c.attach(fid: 3, aname: s.path + "/sub") } == LinuxErrno.ENOENT)
        // The root qid's path is the export directory's inode.
        #expect(root.path == UInt64(lstatOf(s.path)!.st_ino))
    }

    @Test func attachByUserNameWhenNoNumericUidIsGiven() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.client()
        try c.version()
        try c.attach(fid: 0, uname: "root", nuname: NineP.noUid)
        #expect(errnoOf { try c.attach(fid: 1, uname: "no-such-user-here", nuname: NineP.noUid) } == LinuxErrno.EACCES)
    }

    @Test func walkClonesWalksManyAndStopsPartway() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeDirectory(s("a"))
        makeDirectory(s("a/b"))
        makeFile(s("a/b/f"), [1, 2, 3])
        let c = try s.session()
        let root = try c.getattr(0).qid

        // nwname = 0 clones.
        #expect(try c.walk(0, 1, []).isEmpty)
        #expect(try c.getattr(1).qid == root)

        // Several components at once: one qid per component.
        let qids = try c.walk(0, 2, ["a", "b", "f"])
        #expect(qids.count == 3)
        #expect(qids[0].isDirectory && qids[1].isDirectory && !qids[2].isDirectory)
        #expect(qids[0].path == UInt64(lstatOf(s("a"))!.st_ino))
        #expect(qids[2].path == UInt64(lstatOf(s("a/b/f"))!.st_ino))
        #expect(try c.getattr(2).size == 3)

        // A walk that fails part way returns the qids so far and creates no fid.
        let partial = try c.walk(0, 3, ["a", "missing", "x"])
        #expect(partial.count == 1)
        #expect(partial.first == qids[0])
        #expect(errnoOf { try c.getattr(3) } == LinuxErrno.EBADF)
        // A walk whose first component fails is an error.
        #expect(errnoOf { try c.walk(0, 3, ["missing"]) } == LinuxErrno.ENOENT)
        #expect(errnoOf { try c.getattr(3) } == LinuxErrno.EBADF)

        // Walking a fid onto itself moves it.
        try c.walk(1, 1, ["a"])
        #expect(try c.getattr(1).qid == qids[0])

        // newfid already in use.
        #expect(errnoOf { try c.walk(0, 2, ["a"]) } == LinuxErrno.EBADF)
        // Walking through a file.
        #expect(errnoOf { try c.walk(2, 4, ["x"]) } == LinuxErrno.ENOTDIR)
    }

    @Test func dotDotAtTheRootStaysAtTheRoot() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeDirectory(s("a"))
        let c = try s.session()
        let root = try c.getattr(0).qid
        #expect(try c.walk(0, 1, [".."]) == [root])
        #expect(try c.getattr(1).qid == root)
        let qids = try c.walk(0, 2, ["a", "..", "..", ".."])
        #expect(qids.count == 4)
        #expect(qids[1] == root && qids[2] == root && qids[3] == root)
        // And from the clone of the root that ".." produced.
        #expect(try c.walk(1, 3, ["..", "a"]).last?.path == UInt64(lstatOf(s("a"))!.st_ino))
    }

    @Test func clunkForgetsTheFid() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        try c.walk(0, 1, [])
        try c.clunk(1)
        #expect(errnoOf { try c.getattr(1) } == LinuxErrno.EBADF)
        #expect(errnoOf { try c.clunk(1) } == LinuxErrno.EBADF)
        // The fid number can be used again.
        try c.walk(0, 1, [])
        #expect(try c.getattr(1).qid.isDirectory)
    }

    @Test func tversionResetsTheSession() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        try c.walk(0, 1, [])
        try c.version()
        // Every fid of the old session is gone.
        #expect(errnoOf { try c.getattr(0) } == LinuxErrno.EBADF)
        #expect(errnoOf { try c.getattr(1) } == LinuxErrno.EBADF)
        try c.attach(fid: 0)
        #expect(try c.getattr(0).qid.isDirectory)
    }

    /// version(5): Tversion aborts the session's outstanding requests, so their tags are free
    /// for the new session, and the old requests' replies never arrive.
    @Test func tversionFreesTheTagsOfTheOldSession() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        try c.openFIFO(0, "fifo", as: 1, mode: 0o666)
        // A read that waits on the FIFO, and a flush of it: aborted, Rflush at once, no reply.
        #expect(c.send(.read(fid: 1, offset: 0, count: 10), tag: 30))
        #expect(c.send(.flush(oldtag: 30), tag: 31))
        #expect(try c.reply(tag: 31) == .flush)
        // Another waiting read, left in flight when the session is reset.
        #expect(c.send(.read(fid: 1, offset: 0, count: 10), tag: 32))
        c.expectNothing(milliseconds: 200, "early reply")
        try c.version()
        try c.attach()
        // The old tags, reused by the new session.
        #expect(c.send(.getattr(fid: 0, mask: GetattrMask.all), tag: 32))
        guard case let .getattr(a) = try c.reply(tag: 32) else { Issue.record("no Rgetattr"); return }
        #expect(a.qid.isDirectory)
        #expect(c.send(.flush(oldtag: 7), tag: 31))
        #expect(try c.reply(tag: 31) == .flush)
        // The old session's FIFO descriptor is closed with its fids (no reader left: ENXIO);
        // and no reply from its aborted read may ever arrive.
        let writer = open(s("fifo"), O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        #expect(writer < 0 && errno == ENXIO, "the old session still holds the FIFO open")
        if writer >= 0 { Glibc.close(writer) }
        c.expectNothing(milliseconds: 300, "reply from the old session")
        #expect(try c.getattr(0).qid.isDirectory)
    }

    @Test func tauthSaysNoAuthenticationIsRequired() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        #expect(errnoOf { try c.rpc(.auth(afid: 5, uname: c.view("root"), aname: c.view(""), nuname: 0)) } == LinuxErrno.ENOENT)
    }
}
