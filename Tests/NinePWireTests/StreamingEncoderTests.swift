@testable import NinePWire
import Testing

/// The encoders that write in place: Rread/Rwalk/Rreaddir built piecewise, and the client-side
/// twalk/twrite/rlerror helpers. Their output must equal the golden vectors byte for byte.
@Suite("Streaming encoders")
struct StreamingEncoderTests {
    let a = Arena()

    @Test func rreadProducedInPlace() throws {
        let buffer = a.buffer(64)
        var w = WireWriter(buffer)
        let region = try w.beginRread(tag: 4, maxCount: 100)
        #expect(region.count == 64 - NineP.readReplyOverhead)  // clamped to the room left
        region.copyBytes(from: Array("hello".utf8))
        let length = w.finishRread(reserved: region.count, produced: 5)
        #expect(length == 16)
        #expect(Array(w.written) == Golden.rread)
        #expect(try RMessage.decode(w.written, msize: 8192) == RMessage(tag: 4, response: .read(data: a.view("hello"))))
    }

    @Test func rreadSmallerThanRoom() throws {
        let buffer = a.buffer(4096)
        var w = WireWriter(buffer)
        let region = try w.beginRread(tag: 4, maxCount: 5)
        #expect(region.count == 5)
        region.copyBytes(from: Array("hello".utf8))
        w.finishRread(reserved: 5, produced: 5)
        #expect(Array(w.written) == Golden.rread)
    }

    @Test func rreadWithNothingProduced() throws {
        let buffer = a.buffer(4096)
        var w = WireWriter(buffer)
        let region = try w.beginRread(tag: 9, maxCount: 1000)
        #expect(w.finishRread(reserved: region.count, produced: 0) == NineP.readReplyOverhead)
        #expect(Array(w.written) == hex("0b000000", "75", "0900", "00000000"))
    }

    @Test func rreadWithoutRoomForTheHeader() {
        let buffer = a.buffer(NineP.readReplyOverhead - 1)
        var w = WireWriter(buffer)
        #expect(throws: WireError.noRoom) { _ = try w.beginRread(tag: 1, maxCount: 10) }
    }

    @Test func rreadAfterAnotherFrame() throws {
        let buffer = a.buffer(4096)
        var w = WireWriter(buffer)
        try Response.clunk.encode(tag: 11, into: &w)
        let region = try w.beginRread(tag: 4, maxCount: 5)
        region.copyBytes(from: Array("hello".utf8))
        w.finishRread(reserved: 5, produced: 5)
        #expect(Array(w.written) == Golden.rclunk + Golden.rread)
    }

    @Test func rwalkBuiltQidByQid() throws {
        let buffer = a.buffer(256)
        var w = WireWriter(buffer)
        try w.beginRwalk(tag: 2)
        try w.qid(Qid(type: Qid.typeDir, version: 0, path: 0x10))
        try w.qid(Qid(type: Qid.typeFile, version: 7, path: 0x0102_0304_0506_0708))
        #expect(w.finishRwalk(count: 2) == 35)
        #expect(Array(w.written) == Golden.rwalk)
    }

    @Test func rwalkWithNoQids() throws {
        let buffer = a.buffer(64)
        var w = WireWriter(buffer)
        try w.beginRwalk(tag: 3)
        w.finishRwalk(count: 0)
        #expect(Array(w.written) == hex("09000000", "6f", "0300", "0000"))
        #expect(try RMessage.decode(w.written, msize: 64) == RMessage(tag: 3, response: .walk(qids: a.qidList([]))))
    }

    @Test func qidWithoutRoomWritesNothing() throws {
        let buffer = a.buffer(NineP.headerSize + 2 + Qid.wireSize - 1)
        var w = WireWriter(buffer)
        try w.beginRwalk(tag: 2)
        #expect(throws: WireError.noRoom) { try w.qid(Qid(type: 0, version: 0, path: 0)) }
        #expect(w.offset == NineP.headerSize + 2)
        #expect(buffer[w.offset...].allSatisfy { $0 == 0xAA })
    }

    @Test func dirEntryWriterFillsToTheLimit() throws {
        let buffer = a.buffer(4096)
        var d = try DirEntryWriter(into: buffer, tag: 8, maxCount: 50)
        let dotFits = d.append(qid: Qid(type: Qid.typeDir, version: 0, path: 1), offset: 1, type: 4, name: ".")
        #expect(dotFits)
        let aFits = d.append(qid: Qid(type: Qid.typeFile, version: 0, path: 2), offset: 2, type: 8, name: a.view("a"))
        #expect(aFits)
        #expect(d.dataCount == 50)
        // A third entry would exceed maxCount: refused, nothing written.
        let bFits = d.append(qid: Qid(type: Qid.typeFile, version: 0, path: 3), offset: 3, type: 8, name: "b")
        #expect(!bFits)
        #expect(d.dataCount == 50)
        let length = d.finish()
        #expect(length == 61)
        #expect(Array(buffer[0..<61]) == Golden.rreaddir)
        #expect(buffer[61...].allSatisfy { $0 == 0xAA })
    }

    @Test func dirEntryWriterRefusesAnEntryOneByteTooBig() throws {
        let buffer = a.buffer(4096)
        var d = try DirEntryWriter(into: buffer, tag: 8, maxCount: 49)
        let dotFits = d.append(qid: Qid(type: Qid.typeDir, version: 0, path: 1), offset: 1, type: 4, name: ".")
        #expect(dotFits)
        let aFits = d.append(qid: Qid(type: Qid.typeFile, version: 0, path: 2), offset: 2, type: 8, name: "a")
        #expect(!aFits)
        #expect(d.dataCount == DirEntry.wireSize(nameLength: 1))
        let length = d.finish()
        #expect(length == NineP.readdirReplyOverhead + 25)
        #expect(buffer[length...].allSatisfy { $0 == 0xAA })
        let frame = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
        guard case let .readdir(entries) = try RMessage.decode(frame, msize: 8192).response else {
            Issue.record("not an Rreaddir")
            return
        }
        #expect(entries.map { $0.name.makeString() } == ["."])
    }

    @Test func dirEntryWriterIsBoundedByTheBuffer() throws {
        // maxCount is larger than the buffer: the buffer end is the limit.
        let buffer = a.buffer(NineP.readdirReplyOverhead + 30)
        var d = try DirEntryWriter(into: buffer, tag: 1, maxCount: 8168)
        let abcFits = d.append(qid: Qid(type: 0, version: 0, path: 1), offset: 1, type: 8, name: "abc")  // 27 bytes
        #expect(abcFits)
        let emptyFits = d.append(qid: Qid(type: 0, version: 0, path: 2), offset: 2, type: 8, name: "")  // 24 more: no
        #expect(!emptyFits)
        #expect(d.dataCount == 27)
        let length = d.finish()
        #expect(length == NineP.readdirReplyOverhead + 27)
        #expect(buffer[(NineP.readdirReplyOverhead + 27)...].allSatisfy { $0 == 0xAA })
    }

    @Test func dirEntryWriterWithUnboundedCount() throws {
        let buffer = a.buffer(100)
        var d = try DirEntryWriter(into: buffer, tag: 1, maxCount: .max)
        let xFits = d.append(qid: Qid(type: 0, version: 0, path: 1), offset: 1, type: 8, name: "x")
        #expect(xFits)
        let length = d.finish()
        #expect(length == NineP.readdirReplyOverhead + 25)
        var e = try DirEntryWriter(into: buffer, tag: 1, maxCount: 0)
        let emptyFits = e.append(qid: Qid(type: 0, version: 0, path: 1), offset: 1, type: 8, name: "")
        #expect(!emptyFits)
        let emptyLength = e.finish()
        #expect(emptyLength == NineP.readdirReplyOverhead)
    }

    @Test func dirEntryWriterRefusesOverlongName() throws {
        let buffer = a.buffer(1 << 18)
        var d = try DirEntryWriter(into: buffer, tag: 1, maxCount: 1 << 18)
        let tooLongFits = d.append(qid: Qid(type: 0, version: 0, path: 1), offset: 1, type: 8, name: [UInt8](repeating: 0x61, count: 0x10000))
        #expect(!tooLongFits)
        #expect(d.dataCount == 0)
        let longestFits = d.append(qid: Qid(type: 0, version: 0, path: 1), offset: 1, type: 8, name: [UInt8](repeating: 0x61, count: 0xFFFF))
        #expect(longestFits)
    }

    @Test func dirEntryWriterNeedsRoomForTheHeader() {
        let buffer = a.buffer(NineP.readdirReplyOverhead - 1)
        #expect(throws: WireError.noRoom) { _ = try DirEntryWriter(into: buffer, tag: 1, maxCount: 10) }
    }

    @Test func twalkFromAnyNames() throws {
        let fromStrings = try encoded { w throws(WireError) in try w.twalk(tag: 2, fid: 0, newfid: 1, names: ["usr", "lib"]) }
        let fromStatic = try encoded { w throws(WireError) in
            try w.twalk(tag: 2, fid: 0, newfid: 1, names: ["usr", "lib"] as [StaticString])
        }
        let fromViews = try encoded { w throws(WireError) in try w.twalk(tag: 2, fid: 0, newfid: 1, names: [a.view("usr"), a.view("lib")]) }
        #expect(fromStrings == Golden.twalk)
        #expect(fromStatic == Golden.twalk)
        #expect(fromViews == Golden.twalk)
        let none = try encoded { w throws(WireError) in try w.twalk(tag: 2, fid: 5, newfid: 5, names: [String]()) }
        #expect(none == hex("11000000", "6e", "0200", "05000000", "05000000", "0000"))
    }

    @Test func twalkRefusesSeventeenNames() throws {
        let buffer = a.buffer(4096)
        var w = WireWriter(buffer)
        #expect(throws: WireError.tooManyWalkElements(17)) {
            try w.twalk(tag: 1, fid: 0, newfid: 1, names: (0..<17).map { "n\($0)" })
        }
        #expect(w.offset == 0)
        let sixteen = try w.twalk(tag: 1, fid: 0, newfid: 1, names: (0..<16).map { "n\($0)" })
        #expect(sixteen == w.offset)
        guard case let .walk(_, _, names) = try TMessage.decode(w.written, msize: 8192).request else {
            Issue.record("not a Twalk")
            return
        }
        #expect(names.map { $0.makeString() } == (0..<16).map { "n\($0)" })
    }

    @Test func twriteFromAnyBytes() throws {
        let fromArray = try encoded { w throws(WireError) in try w.twrite(tag: 6, fid: 1, offset: 10, data: [0x61, 0x62, 0x63] as [UInt8]) }
        let fromString = try encoded { w throws(WireError) in try w.twrite(tag: 6, fid: 1, offset: 10, data: "abc") }
        let fromView = try encoded { w throws(WireError) in try w.twrite(tag: 6, fid: 1, offset: 10, data: a.view("abc")) }
        #expect(fromArray == Golden.twrite && fromString == Golden.twrite && fromView == Golden.twrite)
        let empty = try encoded { w throws(WireError) in try w.twrite(tag: 6, fid: 1, offset: 10, data: [UInt8]()) }
        #expect(empty == withSize(Array(Golden.twrite[0..<19]) + le32(0)))
    }

    @Test func twriteWithoutRoom() {
        let buffer = a.buffer(Golden.twrite.count - 1)
        var w = WireWriter(buffer)
        #expect(throws: WireError.noRoom) { try w.twrite(tag: 6, fid: 1, offset: 10, data: "abc") }
        #expect(buffer[w.offset...].allSatisfy { $0 == 0xAA })
    }

    @Test func rlerrorHelper() throws {
        let bytes = try encoded { w throws(WireError) in try w.rlerror(tag: 5, errno: LinuxErrno.ENOENT) }
        #expect(bytes == Golden.rlerror)
    }

    @Test func attributesNeedTheirWholeSize() throws {
        let buffer = a.buffer(Attributes.wireSize - 1)
        var w = WireWriter(buffer)
        #expect(throws: WireError.noRoom) { try w.attributes(sampleAttributes()) }
        #expect(w.offset == 0)
    }

    @Test func reserveAndUnreserve() throws {
        let buffer = a.buffer(32)
        var w = WireWriter(buffer)
        try w.beginFrame(.rread, tag: 1)
        let region = try w.reserve(10)
        #expect(region.count == 10 && w.offset == 17)
        w.unreserve(4)
        #expect(w.offset == 13)
        #expect(throws: WireError.noRoom) { _ = try w.reserve(20) }
        #expect(throws: WireError.noRoom) { _ = try w.reserve(-1) }
    }
}
