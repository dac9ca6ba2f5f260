@testable import NinePWire
import Testing

/// Every message, in both directions, survives encode -> decode unchanged.
@Suite("Round trips")
struct RoundTripTests {
    let a = Arena()

    @Test func everyCaseHasASample() {
        // 31 Request cases and 33 Response cases (29 of 9P2000.L, 9P2000.u's Rerror and the
        // three of localio); the sample switches are exhaustive over MessageType, so every
        // type is either sampled or explicitly excluded.
        #expect(MessageType.requestTypes.count == 31)
        #expect(MessageType.responseTypes.count == 33)
        for type in MessageType.requestTypes {
            #expect(sampleRequest(type, a)?.type == type, "\(type)")
            #expect(sampleResponse(type, a) == nil)
        }
        for type in MessageType.responseTypes {
            #expect(sampleResponse(type, a)?.type == type, "\(type)")
            #expect(sampleRequest(type, a) == nil)
        }
        #expect(sampleRequest(.tlerror, a) == nil && sampleResponse(.tlerror, a) == nil)
    }

    @Test("Request round trip", arguments: MessageType.requestTypes)
    func request(_ type: MessageType) throws {
        let request = try #require(sampleRequest(type, a))
        for tag: UInt16 in [0, 0x1234, NineP.noTag] {
            let bytes = try encoded(request, tag: tag)
            let frame = a.bytes(bytes)
            #expect(bytes.count >= NineP.headerSize)
            #expect(Array(bytes[0..<4]) == le32(UInt32(bytes.count)))
            #expect(bytes[4] == type.rawValue)
            #expect(Array(bytes[5..<7]) == le16(Int(tag)))

            let decoded = try TMessage.decode(frame, msize: UInt32(bytes.count))
            #expect(decoded == TMessage(tag: tag, request: request))
            #expect(decoded.request.type == type)
            #expect(try reencoded(decoded) == bytes)
            // A T-message is not a valid reply.
            #expect(rError(frame) == .unknownType(type.rawValue))
        }
    }

    @Test("Response round trip", arguments: MessageType.responseTypes)
    func response(_ type: MessageType) throws {
        let response = try #require(sampleResponse(type, a))
        for tag: UInt16 in [0, 0x1234, NineP.noTag] {
            let bytes = try encoded(response, tag: tag)
            let frame = a.bytes(bytes)
            #expect(Array(bytes[0..<4]) == le32(UInt32(bytes.count)))
            #expect(bytes[4] == type.rawValue)
            #expect(Array(bytes[5..<7]) == le16(Int(tag)))

            let decoded = try RMessage.decode(frame, msize: UInt32(bytes.count))
            #expect(decoded == RMessage(tag: tag, response: response))
            #expect(decoded.response.type == type)
            #expect(try reencoded(decoded) == bytes)
            #expect(tError(frame) == .unknownType(type.rawValue))
        }
    }

    /// Encoding into a buffer one byte too small throws `.noRoom` and writes nothing past it.
    @Test func encodersNeverOverrun() throws {
        for (type, frame) in try allSampleFrames(a) {
            let guarded = a.buffer(frame.count + 16, fill: 0xAA)
            var w = WireWriter(UnsafeMutableRawBufferPointer(rebasing: guarded[0..<(frame.count - 1)]))
            let error: WireError? = {
                do throws(WireError) {
                    if type.isRequest {
                        try sampleRequest(type, a)!.encode(tag: 0x1234, into: &w)
                    } else {
                        try sampleResponse(type, a)!.encode(tag: 0x1234, into: &w)
                    }
                    return nil
                } catch {
                    return error
                }
            }()
            #expect(error == .noRoom, "\(type)")
            #expect(guarded[(frame.count - 1)...].allSatisfy { $0 == 0xAA }, "\(type) wrote past its buffer")
            #expect(WireError.noRoom.errno == LinuxErrno.ENOMEM)
        }
    }

    @Test func exactSizeBufferIsEnough() throws {
        for (type, frame) in try allSampleFrames(a) {
            let buffer = a.buffer(frame.count)
            var w = WireWriter(buffer)
            let length = type.isRequest
                ? try sampleRequest(type, a)!.encode(tag: 0x1234, into: &w)
                : try sampleResponse(type, a)!.encode(tag: 0x1234, into: &w)
            #expect(length == frame.count && w.remaining == 0, "\(type)")
            #expect(Array(buffer) == frame, "\(type)")
        }
    }

    @Test func severalFramesInOneBuffer() throws {
        let bytes = try encoded { w throws(WireError) in
            let first = try Request.clunk(fid: 1).encode(tag: 11, into: &w)
            let second = try Response.clunk.encode(tag: 11, into: &w)
            let third = try Request.flush(oldtag: 4).encode(tag: 12, into: &w)
            #expect(first == 11 && second == 7 && third == 9)
            return first + second + third
        }
        #expect(bytes == Golden.tclunk + Golden.rclunk + Golden.tflush)
    }

    @Test func edgeSizedFields() throws {
        // Empty strings, empty walks, the largest string, 16 walk elements and qids.
        let longName = String(repeating: "n", count: 0xFFFF)
        let sixteen = (0..<16).map { "element\($0)" }
        let requests: [Request] = [
            .version(msize: 0, version: a.view("")),
            .walk(fid: 0, newfid: 0, names: a.walkNames([])),
            .walk(fid: 1, newfid: 2, names: a.walkNames(sixteen)),
            .write(fid: 1, offset: 0, data: a.view([UInt8]())),
            .write(fid: 1, offset: .max, data: a.view(Array(repeating: 0x5A, count: 100_000))),
            .mkdir(dfid: .max, name: a.view(longName), mode: .max, gid: .max),
            .attach(fid: 0, afid: 0, uname: a.view(""), aname: a.view(""), nuname: 0),
        ]
        for request in requests {
            let bytes = try encoded(request, tag: 1)
            #expect(try TMessage.decode(a.bytes(bytes), msize: .max) == TMessage(tag: 1, request: request))
        }
        let qids = (0..<16).map { Qid(type: UInt8($0), version: UInt32($0) << 24, path: UInt64($0) << 56) }
        let responses: [Response] = [
            .walk(qids: a.qidList([])),
            .walk(qids: a.qidList(qids)),
            .read(data: a.view([UInt8]())),
            .readdir(entries: a.dirEntries([])),
            .readlink(target: a.view(longName)),
            .getattr(Attributes()),
        ]
        for response in responses {
            let bytes = try encoded(response, tag: 1)
            #expect(try RMessage.decode(a.bytes(bytes), msize: .max) == RMessage(tag: 1, response: response))
        }
        // One byte more than a string can hold is refused.
        #expect(throws: WireError.noRoom) {
            try encoded(.mkdir(dfid: 1, name: a.view(longName + "n"), mode: 0, gid: 0), tag: 1)
        }
    }

    @Test func viewsEqualByContentAndWireBytes() throws {
        #expect(a.view("abc") == a.view("abc"))
        #expect(a.view("abc") != a.view("abd"))
        #expect(a.view("") == ByteView.empty)
        #expect(a.view("abc").hashValue == a.view("abc").hashValue)
        #expect(a.view("9P2000.L").equals("9P2000.L") && !a.view("9P2000").equals("9P2000.L"))
        #expect(ByteView.empty.equals(""))
        #expect(a.view("a/b").contains(byte: UInt8(ascii: "/")))
        #expect(a.view("h\u{e9}").makeString() == "h\u{e9}")
        // Every WireBytes flavour writes the same string[s].
        let expected = hex("0600", "68c3a96c6c6f")  // "héllo" in UTF-8 (é = c3 a9)
        let fromString = try encoded { w throws(WireError) in try w.string("h\u{e9}llo"); return w.offset }
        let fromStatic = try encoded { w throws(WireError) in try w.string("h\u{e9}llo" as StaticString); return w.offset }
        let fromArray = try encoded { w throws(WireError) in try w.string(Array("h\u{e9}llo".utf8)); return w.offset }
        let fromView = try encoded { w throws(WireError) in try w.string(a.view("h\u{e9}llo")); return w.offset }
        #expect(fromString == expected && fromStatic == expected && fromArray == expected && fromView == expected)
    }

    @Test func qidFlagsAndDescription() {
        let q = Qid(type: Qid.typeDir | Qid.typeSymlink, version: 1, path: 2)
        #expect(q.isDirectory && q.isSymlink)
        #expect(!Qid(type: Qid.typeFile, version: 0, path: 0).isDirectory)
        #expect(q.description == "qid(type: 0x82, version: 1, path: 2)")
    }
}
