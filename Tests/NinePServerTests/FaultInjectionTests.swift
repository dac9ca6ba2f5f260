import Glibc
import Logging
import NinePMemory
@testable import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// Every backend operation a 9P request reaches, failing with EIO and with ENOSPC: the client
/// gets Rlerror with exactly that errno, the same connection goes on serving, and every fid
/// and backend handle the case made is given back.
@Suite struct FaultInjectionTests {
    /// How one case reaches `operation`: `prepare` makes the fids it needs (returning them, to
    /// be clunked after), `request` is the call that must fail.
    struct Case: CustomStringConvertible, Sendable {
        let operation: BackendOperation
        /// The request that reaches it, when the operation name does not say.
        var via = ""
        var prepare: @Sendable (WireClient) throws -> [UInt32] = { _ in [] }
        let request: @Sendable (WireClient, Int) throws -> Void
        var description: String { via.isEmpty ? operation.rawValue : "\(operation.rawValue) (\(via))" }
    }

    static let file: UInt32 = 1, directory: UInt32 = 2, extra: UInt32 = 3, symlink: UInt32 = 4

    /// fid 1: file.txt opened read-write.
    static func openFile(_ c: WireClient) throws -> [UInt32] {
        _ = try c.walk(0, file, ["file.txt"])
        _ = try c.lopen(file, OpenFlags.readWrite)
        return [file]
    }

    static func walkFile(_ c: WireClient) throws -> [UInt32] {
        _ = try c.walk(0, file, ["file.txt"])
        return [file]
    }

    static func walkDirectory(_ c: WireClient) throws -> [UInt32] {
        _ = try c.walk(0, directory, ["dir"])
        return [directory]
    }

    static let cases: [Case] = [
        Case(operation: .openRoot) { c, _ in try c.attach(fid: extra) },
        Case(operation: .lookup) { c, _ in _ = try c.walk(0, extra, ["file.txt"]) },
        Case(operation: .duplicate) { c, _ in _ = try c.walk(0, extra, []) },
        Case(operation: .lookupParent, prepare: walkDirectory) { c, _ in _ = try c.walk(directory, extra, [".."]) },
        Case(operation: .stat) { c, _ in _ = try c.getattr(0) },
        Case(operation: .statAt) { c, i in try c.mkdir(0, "made-\(i)") },
        Case(operation: .locate, prepare: walkFile) { c, i in try c.rename(file, 0, "renamed-\(i)") },
        Case(operation: .open, prepare: walkFile) { c, _ in _ = try c.lopen(file, OpenFlags.readOnly) },
        Case(operation: .openAt, prepare: walkDirectory) { c, i in _ = try c.lcreate(directory, "created-\(i)") },
        Case(operation: .read, prepare: openFile) { c, _ in _ = try c.read(file, offset: 0, count: 4096) },
        Case(operation: .write, prepare: openFile) { c, _ in _ = try c.write(file, offset: 0, Array("data".utf8)) },
        Case(operation: .sync, prepare: openFile) { c, _ in try c.fsync(file) },
        Case(operation: .changeMode, prepare: walkFile) { c, _ in try c.setattr(file, SetattrFields(valid: SetattrValid.mode, mode: 0o600)) },
        Case(operation: .changeOwner, prepare: walkFile) { c, _ in
            try c.setattr(file, SetattrFields(valid: SetattrValid.uid, uid: getuid()))
        },
        Case(operation: .truncate, prepare: openFile) { c, _ in try c.setattr(file, SetattrFields(valid: SetattrValid.size, size: 1)) },
        Case(operation: .setTimes, prepare: walkFile) { c, _ in
            try c.setattr(file, SetattrFields(valid: SetattrValid.atime | SetattrValid.mtime))
        },
        Case(operation: .statfs) { c, _ in _ = try c.statfs(0) },
        Case(operation: .seekDirectory, prepare: { c in
            _ = try walkDirectory(c)
            _ = try c.lopen(directory, OpenFlags.readOnly)
            return [directory]
        }) { c, _ in _ = try c.readdir(directory, offset: 0, count: 8192) },
        Case(operation: .readDirectory, prepare: { c in
            _ = try walkDirectory(c)
            _ = try c.lopen(directory, OpenFlags.readOnly)
            return [directory]
        }) { c, _ in _ = try c.readdir(directory, offset: 0, count: 8192) },
        Case(operation: .makeDirectory) { c, i in try c.mkdir(0, "directory-\(i)") },
        Case(operation: .makeNode) { c, i in _ = try c.mknod(0, "node-\(i)", mode: 0o010644) },
        Case(operation: .makeSymlink) { c, i in _ = try c.symlink(0, "symlink-\(i)", target: "file.txt") },
        Case(operation: .link, prepare: walkFile) { c, i in try c.link(0, file, "hardlink-\(i)") },
        Case(operation: .rename) { c, i in try c.renameat(0, "file.txt", 0, "moved-\(i)") },
        Case(operation: .unlink, via: "Tunlinkat") { c, _ in try c.unlinkat(0, "file.txt") },
        Case(operation: .readLink, prepare: { c in
            _ = try c.walk(0, symlink, ["link"])
            return [symlink]
        }) { c, _ in _ = try c.readlink(symlink) },
        Case(operation: .getXattr, prepare: walkFile) { c, _ in _ = try c.xattrwalk(file, extra, "user.colour") },
        Case(operation: .listXattrs, prepare: walkFile) { c, _ in _ = try c.xattrwalk(file, extra, "") },
        Case(operation: .setXattr, prepare: { c in
            _ = try walkFile(c)
            try c.xattrcreate(file, "user.colour", size: 4, flags: 0)
            _ = try c.write(file, offset: 0, Array("blue".utf8))
            return []  // the clunk below is the request
        }) { c, _ in try c.clunk(file) },
        Case(operation: .removeXattr, prepare: { c in
            _ = try walkFile(c)
            try c.xattrcreate(file, "user.colour", size: 0, flags: 2)  // XATTR_REPLACE, empty: remove
            return []
        }) { c, _ in try c.clunk(file) },
        Case(operation: .getLock, prepare: openFile) { c, _ in _ = try c.getlock(file, type: LockType.write) },
        Case(operation: .unlink, via: "Tremove", prepare: walkFile) { c, _ in try c.remove(file) },
    ]

    static let errnos: [Int32] = [EIO, ENOSPC]

    @Test(arguments: cases)
    func anErrorFromTheBackendReachesTheClientAsRlerror(_ testCase: Case) throws {
        let s = try InMemoryServer()
        s.fs.addFile("file.txt", contents: Array("hello".utf8))
        s.fs.addFile("dir/inner.txt")
        let c = try s.session()
        try c.symlink(0, "link", target: "file.txt")
        let handles = s.fs.openHandles
        #expect(s.serverFids == 1)
        for (index, code) in Self.errnos.enumerated() {
            let made = try testCase.prepare(c)
            let before = s.fs.faults.calls(testCase.operation)
            s.fs.faults.fail(testCase.operation, errno: code)
            let got = errnoOf { try testCase.request(c, index) }
            #expect(got == UInt32(code), "\(testCase.operation) with errno \(code): got \(got.map(String.init) ?? "success")")
            #expect(s.fs.faults.calls(testCase.operation) > before, "\(testCase.operation) was not called")
            #expect(!s.fs.faults.hasRule(for: testCase.operation), "the planned failure of \(testCase.operation) was not used")
            s.fs.faults.clear()
            // The connection goes on: a request of each kind the case used succeeds.
            #expect(try c.getattr(0).qid.type == Qid.typeDir)
            for fid in made { try? c.clunk(fid) }
            #expect(s.serverFids == 1, "\(testCase.operation): fids left behind")
            #expect(s.fs.openHandles == handles, "\(testCase.operation): backend handles left open")
        }
        // The operation itself goes on once the fault is gone (it may still fail on its own
        // terms: a removal of an xattr that was never set is ENODATA).
        let made = try testCase.prepare(c)
        let after = errnoOf { try testCase.request(c, 99) }
        #expect(after != UInt32(EIO) && after != UInt32(ENOSPC))
        for fid in made { try? c.clunk(fid) }
        try? c.clunk(Self.extra)
        #expect(s.serverFids == 1, "\(testCase.operation): fids left behind")
        #expect(s.fs.openHandles == handles, "\(testCase.operation): backend handles left open")
    }

    /// Tlock reports a backend failure in its status (9P2000.L has no Rlerror for a lock that
    /// failed other than by conflict): ERROR, and the connection goes on.
    @Test func aFailedLockIsAnsweredWithStatusError() throws {
        let s = try InMemoryServer()
        s.fs.addFile("file.txt")
        let c = try s.session()
        let handles = s.fs.openHandles
        _ = try Self.openFile(c)
        for code in Self.errnos {
            s.fs.faults.fail(.setLock, errno: code)
            #expect(try c.lock(Self.file, type: LockType.write) == LockStatus.error)
        }
        #expect(try c.lock(Self.file, type: LockType.write) == LockStatus.success)
        try c.clunk(Self.file)
        #expect(s.serverFids == 1 && s.fs.openHandles == handles)
    }

    /// A walk whose second step fails answers the first qid and makes no fid.
    @Test func aWalkFailingPartWayMakesNoFid() throws {
        let s = try InMemoryServer()
        s.fs.addFile("dir/inner.txt")
        let c = try s.session()
        let handles = s.fs.openHandles
        s.fs.faults.fail(.lookup, errno: EIO, name: "inner.txt")
        #expect(try c.walk(0, Self.extra, ["dir", "inner.txt"]).count == 1)
        #expect(errnoOf { try c.getattr(Self.extra) } == UInt32(EBADF))
        #expect(s.serverFids == 1 && s.fs.openHandles == handles)
        #expect(try c.walk(0, Self.extra, ["dir", "inner.txt"]).count == 2)
    }

    /// A Treaddir pipelined behind another on the same fid reads through a second open handle
    /// of its own (openDirectoryAgain): its failure is that request's Rlerror alone.
    @Test func aSecondReaddirInFlightFailsAlone() throws {
        let s = try InMemoryServer()
        s.fs.addFile("dir/inner.txt")
        let c = try s.session()
        let handles = s.fs.openHandles
        _ = try c.walk(0, Self.directory, ["dir"])
        _ = try c.lopen(Self.directory, OpenFlags.readOnly)
        let gate = s.fs.faults.block(.readDirectory)
        #expect(c.send(.readdir(fid: Self.directory, offset: 0, count: 8192), tag: 30))
        #expect(gate.waitForArrival(), "the first readdir never reached the backend")
        s.fs.faults.fail(.openDirectoryAgain, errno: ENOSPC)
        #expect(c.send(.readdir(fid: Self.directory, offset: 0, count: 8192), tag: 31))
        guard case let .message(second) = c.receive() else {
            Issue.record("the second readdir was not answered")
            return
        }
        #expect(second.tag == 31)
        if case let .lerror(code) = second.response { #expect(code == UInt32(ENOSPC)) } else { Issue.record("not Rlerror: \(second.response)") }
        gate.open()
        guard case let .message(first) = c.receive() else {
            Issue.record("the first readdir was not answered")
            return
        }
        #expect(first.tag == 30)
        if case let .readdir(entries) = first.response {
            #expect(entries.map { $0.name.makeString() }.contains("inner.txt"))
        } else {
            Issue.record("not Rreaddir: \(first.response)")
        }
        try c.clunk(Self.directory)
        #expect(s.serverFids == 1 && s.fs.openHandles == handles)
    }

    /// flush(5): a request already executing (blocked in the backend) is let finish; its reply
    /// comes first, then Rflush, and the connection goes on.
    @Test func aFlushOfABlockedCallGetsTheReplyThenRflush() throws {
        let s = try InMemoryServer()
        s.fs.addFile("file.txt", contents: Array("hello".utf8))
        let c = try s.session()
        _ = try Self.openFile(c)
        let gate = s.fs.faults.block(.read)
        let readTag: UInt16 = 10, flushTag: UInt16 = 11
        #expect(c.send(.read(fid: Self.file, offset: 0, count: 100), tag: readTag))
        #expect(gate.waitForArrival(), "the read never reached the backend")
        #expect(c.send(.flush(oldtag: readTag), tag: flushTag))
        #expect(!c.pollReadable(milliseconds: 200), "something was answered while the read was still blocked")
        gate.open()
        guard case let .message(first) = c.receive(), case let .message(second) = c.receive() else {
            Issue.record("no reply and Rflush")
            return
        }
        #expect(first.tag == readTag && second.tag == flushTag)
        if case let .read(data) = first.response { #expect(data.makeString() == "hello") } else { Issue.record("not Rread: \(first.response)") }
        if case .flush = second.response {} else { Issue.record("not Rflush: \(second.response)") }
        #expect(try c.read(Self.file, offset: 1, count: 2) == Array("el".utf8))
        try c.clunk(Self.file)
        #expect(s.serverFids == 1)
    }

    /// A slowed backend call is answered, correctly and no sooner than its delay (a lower
    /// bound, which load cannot break), while the same connection's other requests go on.
    @Test func aSlowCallIsAnsweredAfterItsDelayWhileOthersGoOn() throws {
        let s = try InMemoryServer()
        s.fs.addFile("slow.dat", contents: [1, 2, 3])
        let c = try s.session()
        _ = try c.walk(0, 1, ["slow.dat"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        s.fs.faults.delay(.read, milliseconds: 300, name: "slow.dat")
        let slowTag: UInt16 = 30
        let start = ContinuousClock.now
        #expect(c.send(.read(fid: 1, offset: 0, count: 3), tag: slowTag))
        #expect(try c.getattr(0).qid.type == Qid.typeDir, "a getattr behind the slowed read was not answered")
        guard case let .message(reply) = c.receive() else {
            Issue.record("the slowed read was not answered")
            return
        }
        #expect(ContinuousClock.now - start >= .milliseconds(300), "the delay was not applied")
        #expect(reply.tag == slowTag)
        if case let .read(data) = reply.response { #expect(Array(data) == [1, 2, 3]) } else { Issue.record("not Rread: \(reply.response)") }
    }

    /// A backend call blocked on one connection does not hold up another connection.
    @Test func aBlockedCallDoesNotStallAnotherConnection() throws {
        let s = try InMemoryServer()
        s.fs.addFile("slow.dat", contents: [1, 2, 3])
        s.fs.addFile("fast.dat", contents: [4, 5, 6])
        let slow = try s.session()
        let fast = try s.session()
        _ = try slow.walk(0, 1, ["slow.dat"])
        _ = try slow.lopen(1, OpenFlags.readOnly)
        _ = try fast.walk(0, 1, ["fast.dat"])
        _ = try fast.lopen(1, OpenFlags.readOnly)
        // Blocked, not slowed: the other connection's reads must all be answered while this one
        // is still inside the backend, whatever the machine's load (no clock involved).
        let gate = s.fs.faults.block(.read, name: "slow.dat")
        let slowTag: UInt16 = 20
        #expect(slow.send(.read(fid: 1, offset: 0, count: 3), tag: slowTag))
        #expect(gate.waitForArrival(), "the slow read never reached the backend")
        for _ in 0..<10 { #expect(try fast.read(1, offset: 0, count: 3) == [4, 5, 6]) }
        #expect(!slow.pollReadable(milliseconds: 0), "the blocked read was answered before its gate opened")
        gate.open()
        guard case let .message(reply) = slow.receive() else {
            Issue.record("the slow read was not answered")
            return
        }
        #expect(reply.tag == slowTag)
    }
}
