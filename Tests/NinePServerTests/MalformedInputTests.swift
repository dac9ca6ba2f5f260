import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// Bad input over a raw socket: each gets Rlerror with the right errno or a closed
/// connection, and a second connection that was already open keeps working.
@Suite struct MalformedInputTests {
    /// Runs `body` with a bystander session open, then checks the bystander still works.
    func withBystander(_ s: TestServer, _ body: () throws -> Void) throws {
        let bystander = try s.session()
        try bystander.walk(0, 1, [])
        try body()
        #expect(try bystander.getattr(1).qid.isDirectory, "the other connection stopped working")
        #expect(try bystander.walk(0, 2, []).isEmpty)
    }

    @Test func aTruncatedFrameThenClose() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try withBystander(s) {
            let c = try s.session()
            // The header promises 100 bytes; 20 arrive, then the client goes away.
            #expect(c.sendBytes(le32(100) + [MessageType.tgetattr.rawValue] + le16(1) + le32(0) + [0, 0, 0, 0, 0, 0, 0]))
            c.setTimeout(seconds: 0, milliseconds: 300)
            if case let .message(m) = c.receive() { Issue.record("reply to a partial frame: \(m.response.type)") }
            c.close()
        }
    }

    @Test func aSizeFieldBelowTheHeaderClosesTheConnection() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try withBystander(s) {
            for size in [0, 3, 6] {
                let c = try s.session()
                #expect(c.sendBytes(le32(size) + [MessageType.tgetattr.rawValue] + le16(1) + le32(0) + le64(0)))
                let seen = c.waitForClose()
                #expect(seen != nil, "size \(size): connection left open")
                #expect(seen?.isEmpty == true, "size \(size): unexpected reply")
            }
        }
    }

    @Test func aSizeFieldAboveMsizeIsEMSGSIZEThenClose() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try withBystander(s) {
            let c = try s.client()
            #expect(try c.version(msize: 8192).msize == 8192)
            try c.attach()
            #expect(c.sendBytes(le32(10_000) + [MessageType.twrite.rawValue] + le16(9) + le32(0) + le64(0) + le32(9977)))
            guard case let .message(m) = c.receive() else {
                Issue.record("no Rlerror before the close")
                return
            }
            #expect(m.tag == 9)
            #expect(m.response == .lerror(ecode: LinuxErrno.EMSGSIZE))
            #expect(c.waitForClose() != nil, "connection left open")
        }
    }

    @Test func garbageBytes() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try withBystander(s) {
            for seed in UInt64(1)...4 {
                let c = try s.client(timeoutSeconds: 1)
                try c.version(msize: 8192)
                var garbage = pseudoRandomBytes(1000, seed: seed)
                if seed % 2 == 0 {
                    // A plausible size, so that the body is read and decoded, then junk.
                    garbage.replaceSubrange(0..<4, with: le32(40))
                }
                _ = c.sendBytes(garbage)
                // Replies, if any, are errors; the server then closes or waits for more bytes.
                while case let .message(m) = c.receive() {
                    switch m.response {
                    case .lerror, .flush, .version: break
                    default: Issue.record("seed \(seed): garbage produced \(m.response.type)")
                    }
                }
                c.close()
            }
            // New connections are still served.
            let fresh = try s.session()
            #expect(try fresh.getattr(0).qid.isDirectory)
        }
    }

    @Test func unknownMessageTypesAreEOPNOTSUPP() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try withBystander(s) {
            let c = try s.session()
            // Legacy Topen (112), Tcreate (114), Tstat (124), Tlerror (6), an R-message (Rversion).
            for type: UInt8 in [112, 114, 124, 6, 101, 0, 255] {
                #expect(c.sendBytes(frame(type: type, tag: 5, body: le32(0) + [0])))
                guard case let .message(m) = c.receive() else {
                    Issue.record("type \(type): no reply")
                    return
                }
                #expect(m.tag == 5)
                #expect(m.response == .lerror(ecode: LinuxErrno.EOPNOTSUPP), "type \(type)")
            }
            // The connection itself goes on.
            #expect(try c.getattr(0).qid.isDirectory)
        }
    }

    @Test func walkBeforeAttachAndUnknownFidsAreEBADF() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try withBystander(s) {
            let c = try s.client()
            try c.version()
            #expect(errnoOf { try c.walk(0, 1, []) } == LinuxErrno.EBADF)
            #expect(errnoOf { try c.getattr(7) } == LinuxErrno.EBADF)
            #expect(errnoOf { try c.clunk(7) } == LinuxErrno.EBADF)
            #expect(errnoOf { try c.read(7, offset: 0, count: 10) } == LinuxErrno.EBADF)
            #expect(errnoOf { try c.lopen(7, OpenFlags.readOnly) } == LinuxErrno.EBADF)
            try c.attach()
            #expect(errnoOf { try c.walk(3, 4, []) } == LinuxErrno.EBADF)
            #expect(errnoOf { try c.renameat(0, "a", 9, "b") } == LinuxErrno.EBADF)
            #expect(try c.walk(0, 1, []).isEmpty)
        }
    }

    @Test func requestsBeforeTversionAreEPROTO() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try withBystander(s) {
            let c = try s.client()
            #expect(errnoOf { try c.attach() } == LinuxErrno.EPROTO)
            #expect(errnoOf { try c.getattr(0) } == LinuxErrno.EPROTO)
            #expect(errnoOf { try c.walk(0, 1, []) } == LinuxErrno.EPROTO)
            try c.version()
            try c.attach()
            #expect(try c.getattr(0).qid.isDirectory)
        }
    }

    @Test func attachWithAFidInUseIsEBADF() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        try withBystander(s) {
            let c = try s.session()
            try c.walk(0, 1, [])
            #expect(errnoOf { try c.attach(fid: 0) } == LinuxErrno.EBADF)
            #expect(errnoOf { try c.attach(fid: 1) } == LinuxErrno.EBADF)
            #expect(errnoOf { try c.rpc(.attach(fid: 5, afid: 3, uname: c.view(""), aname: c.view(""), nuname: 0)) } == LinuxErrno.EINVAL)
            #expect(try c.getattr(0).qid.isDirectory)
        }
    }

    @Test func twalkWithSeventeenNamesIsEINVAL() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeDirectory(s("a"))
        try withBystander(s) {
            let c = try s.session()
            let names = Array(repeating: "a", count: 17)
            let body = le32(0) + le32(1) + le16(17) + names.flatMap(wireString)
            #expect(c.sendBytes(frame(type: MessageType.twalk.rawValue, tag: 12, body: body)))
            #expect(throws: WireClientError.lerror(LinuxErrno.EINVAL)) { try c.reply(tag: 12) }
            #expect(errnoOf { try c.getattr(1) } == LinuxErrno.EBADF)
            // Sixteen is the most, and allowed.
            #expect(try c.walk(0, 2, ["a"] + Array(repeating: "..", count: 15)).count == 16)
        }
    }

    @Test func twriteWhoseCountDisagreesWithItsPayloadIsEINVAL() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        makeFile(s("f"), [1, 2, 3])
        try withBystander(s) {
            let c = try s.session()
            try c.walk(0, 1, ["f"])
            try c.lopen(1, OpenFlags.readWrite)
            let payload = [UInt8](repeating: 0xEE, count: 50)
            for claimed in [100, 49, 0] {
                let body = le32(1) + le64(0) + le32(claimed) + payload
                #expect(c.sendBytes(frame(type: MessageType.twrite.rawValue, tag: 13, body: body)))
                #expect(throws: WireClientError.lerror(LinuxErrno.EINVAL), "count \(claimed)") { try c.reply(tag: 13) }
            }
            #expect(fileBytes(s("f")) == [1, 2, 3])
            // Trailing bytes after a fixed-size message, and a truncated body.
            #expect(c.sendBytes(frame(type: MessageType.tclunk.rawValue, tag: 14, body: le32(1) + [0])))
            #expect(throws: WireClientError.lerror(LinuxErrno.EINVAL)) { try c.reply(tag: 14) }
            #expect(c.sendBytes(frame(type: MessageType.tgetattr.rawValue, tag: 15, body: le32(1))))
            #expect(throws: WireClientError.lerror(LinuxErrno.EINVAL)) { try c.reply(tag: 15) }
            #expect(try c.write(1, offset: 3, [4]) == 1)
            #expect(fileBytes(s("f")) == [1, 2, 3, 4])
        }
    }

    @Test func aTagReusedWhileInFlightClosesTheConnection() throws {
        let s = try TestServer()
        let bystander = try s.session()
        let c = try s.session()
        try c.openFIFO(0, "fifo", as: 1, mode: 0o644)
        // A read of an empty FIFO stays in flight.
        #expect(c.send(.read(fid: 1, offset: 0, count: 100), tag: 40))
        c.expectNothing(milliseconds: 300, "the FIFO read answered")
        // Another request with the same tag.
        #expect(c.send(.getattr(fid: 0, mask: GetattrMask.all), tag: 40))
        let seen = c.waitForClose()
        #expect(seen != nil, "the connection was not closed")
        for m in seen ?? [] {
            if case .getattr = m.response { Issue.record("the reused tag was served") }
        }
        // Other connections are served, new ones too, and the server shuts down cleanly.
        #expect(try bystander.getattr(0).qid.isDirectory)
        let fresh = try s.session()
        #expect(try fresh.walk(0, 1, ["fifo"]).count == 1)
        let elapsed = s.shutdown(within: .seconds(5))
        #expect(elapsed != nil, "shutdown did not finish within 5 s")
        if let elapsed { expectPrompt(elapsed, under: .seconds(2), "shutdown") }
    }
}
