@testable import NinePWire
import Testing

/// Bad input always gives the expected `WireError`, never a trap.
@Suite("Malformed input")
struct MalformedInputTests {
    let a = Arena()

    func allValidFrames() throws -> [(type: MessageType, frame: [UInt8])] {
        var frames = try allSampleFrames(a)
        for (_, frame) in Golden.requests + Golden.responses {
            frames.append((MessageType(rawValue: frame[4])!, frame))
        }
        return frames
    }

    func decodeError(_ type: MessageType, _ frame: UnsafeRawBufferPointer, msize: UInt32 = bigMsize) -> WireError? {
        type.isRequest ? tError(frame, msize: msize) : rError(frame, msize: msize)
    }

    /// Prefixes keep the original size field: the header check rejects them.
    @Test func everyProperPrefixIsRejected() throws {
        var checked = 0
        for (type, frame) in try allValidFrames() {
            for length in 0..<frame.count {
                let prefix = a.bytes(frame[0..<length])
                let expected: WireError = length < NineP.headerSize ? .truncated : .badSize(UInt32(frame.count))
                #expect(tError(prefix) == expected, "\(type) prefix \(length)")
                #expect(rError(prefix) == expected, "\(type) prefix \(length)")
                checked += 1
            }
        }
        #expect(checked > 2000)
    }

    /// Prefixes whose size field is patched to their length: the body parser must notice the
    /// missing fields (truncated), or the count that no longer matches the payload.
    @Test func everyProperPrefixWithPatchedSizeIsRejected() throws {
        for (type, frame) in try allValidFrames() {
            for length in NineP.headerSize..<frame.count {
                let prefix = a.bytes(withSize(Array(frame[0..<length])))
                let countEnd: Int? = switch type {
                case .twrite: NineP.writeRequestOverhead
                case .rread, .rreaddir: NineP.readReplyOverhead
                default: nil
                }
                let expected: WireError = if let countEnd, length >= countEnd { .countMismatch } else { .truncated }
                #expect(decodeError(type, prefix) == expected, "\(type) prefix \(length)")
            }
        }
    }

    @Test func sizeBelowTheHeader() throws {
        for size: UInt32 in [0, 1, 6] {
            let frame = a.bytes(le32(size) + [MessageType.tclunk.rawValue] + le16(1))
            #expect(headerError(frame) == .badSize(size))
            #expect(tError(frame) == .badSize(size))
            #expect(rError(frame) == .badSize(size))
            #expect(WireError.badSize(size).errno == LinuxErrno.EINVAL)
        }
        // The smallest frame is exactly a header.
        #expect(try RMessage.decode(a.bytes(Golden.rclunk), msize: 7) == RMessage(tag: 11, response: .clunk))
    }

    @Test func headerNeedsSevenBytes() throws {
        for length in 0..<NineP.headerSize {
            #expect(headerError(a.bytes(Golden.tclunk[0..<length])) == .truncated)
        }
        // The header alone decodes, whatever follows.
        let header = try FrameHeader.decode(a.bytes(Golden.tread[0..<7]), msize: 8192)
        #expect(header == FrameHeader(size: 23, type: MessageType.tread.rawValue, tag: 4))
    }

    @Test func sizeAboveMsize() throws {
        let frame = a.bytes(Golden.tread)  // 23 bytes
        #expect(headerError(frame, msize: 22) == .tooLarge(size: 23, msize: 22))
        #expect(tError(frame, msize: 22) == .tooLarge(size: 23, msize: 22))
        #expect(rError(a.bytes(Golden.rread), msize: 15) == .tooLarge(size: 16, msize: 15))
        #expect(tError(frame, msize: 23) == nil)
        // Checked from the header alone, before the frame length.
        #expect(headerError(a.bytes(le32(0x1_0000) + [MessageType.twrite.rawValue] + le16(1)), msize: 8192)
            == .tooLarge(size: 0x1_0000, msize: 8192))
        #expect(tError(a.bytes(le32(.max) + [MessageType.twrite.rawValue] + le16(1)), msize: 8192)
            == .tooLarge(size: .max, msize: 8192))
    }

    @Test func sizeDisagreesWithFrameLength() {
        let longer = a.bytes(Golden.tclunk + [0])
        #expect(tError(longer) == .badSize(11))
        let shorterField = a.bytes(withSize(Golden.tclunk, 10))
        #expect(tError(shorterField) == .badSize(10))
        let longerField = a.bytes(withSize(Golden.tclunk, 12))
        #expect(tError(longerField) == .badSize(12))
        #expect(rError(a.bytes(withSize(Golden.rclunk, 8))) == .badSize(8))
    }

    @Test func unknownTypes() {
        func frame(_ type: UInt8) -> UnsafeRawBufferPointer { a.bytes(withSize([0, 0, 0, 0, type, 1, 0, 1, 0, 0, 0])) }
        for raw in 0...UInt8.max {
            let known = MessageType(rawValue: raw)
            let tExpected = known.map { $0.isRequest && $0 != .tlerror } ?? false
            let rExpected = known.map { !$0.isRequest } ?? false
            if !tExpected { #expect(tError(frame(raw)) == .unknownType(raw), "T type \(raw)") }
            if !rExpected { #expect(rError(frame(raw)) == .unknownType(raw), "R type \(raw)") }
        }
        // 9P2000 and 9P2000.u messages are not part of 9P2000.L (but for Rerror, 107, which
        // clients decode: other servers answer with it).
        #expect(MessageType(rawValue: 107) == .rerror)
        #expect(tError(frame(107)) == .unknownType(107))
        for legacy: UInt8 in [106, 112, 113, 114, 115, 124, 125, 126, 127] {
            #expect(MessageType(rawValue: legacy) == nil)
            #expect(tError(frame(legacy)) == .unknownType(legacy))
        }
        #expect(tError(frame(MessageType.tlerror.rawValue)) == .unknownType(6))
        #expect(WireError.unknownType(6).errno == LinuxErrno.EOPNOTSUPP)
    }

    @Test func trailingBytes() {
        #expect(tError(a.bytes(withSize(Golden.tclunk + [1, 2, 3]))) == .trailingBytes(3))
        #expect(rError(a.bytes(withSize(Golden.rclunk + [0]))) == .trailingBytes(1))
        #expect(tError(a.bytes(withSize(Golden.tattach + [0, 0]))) == .trailingBytes(2))
        #expect(rError(a.bytes(withSize(Golden.rgetattr + [0]))) == .trailingBytes(1))
        #expect(rError(a.bytes(withSize(Golden.rwalk + Array(repeating: 0, count: 13)))) == .trailingBytes(13))
        #expect(WireError.trailingBytes(1).errno == LinuxErrno.EINVAL)
    }

    @Test func twalkWithSeventeenNames() {
        var body = le32(0) + le32(1) + le16(17)
        for i in 0..<17 { body += le16(1) + [UInt8(0x61 + i)] }
        let frame = a.bytes(withSize([0, 0, 0, 0, MessageType.twalk.rawValue, 1, 0] + body))
        #expect(tError(frame) == .tooManyWalkElements(17))
        // The count alone is enough to refuse, before reading any name.
        let bare = a.bytes(withSize([0, 0, 0, 0, MessageType.twalk.rawValue, 1, 0] + le32(0) + le32(1) + le16(0xFFFF)))
        #expect(tError(bare) == .tooManyWalkElements(0xFFFF))
        #expect(WireError.tooManyWalkElements(17).errno == LinuxErrno.EINVAL)
    }

    @Test func twalkWithFewerNamesThanCounted() {
        var bytes = Golden.twalk
        bytes[15] = 3  // nwname = 3, two names present
        #expect(tError(a.bytes(bytes)) == .truncated)
        bytes[15] = 1  // nwname = 1, one name left over
        #expect(tError(a.bytes(bytes)) == .trailingBytes(5))
    }

    @Test func rwalkWithSeventeenQids() {
        let body = le16(17) + Array(repeating: 0, count: 17 * Qid.wireSize)
        #expect(rError(a.bytes(withSize([0, 0, 0, 0, MessageType.rwalk.rawValue, 1, 0] + body))) == .tooManyWalkElements(17))
        var short = Golden.rwalk
        short[7] = 3  // nwqid = 3, two qids present
        #expect(rError(a.bytes(short)) == .truncated)
    }

    @Test func twriteCountMismatch() {
        var more = Golden.twrite
        more[19] = 4  // count = 4, 3 bytes of data
        #expect(tError(a.bytes(more)) == .countMismatch)
        var less = Golden.twrite
        less[19] = 2  // count = 2, 3 bytes of data
        #expect(tError(a.bytes(less)) == .countMismatch)
        var huge = Golden.twrite
        huge.replaceSubrange(19..<23, with: le32(.max))
        #expect(tError(a.bytes(huge)) == .countMismatch)
        #expect(WireError.countMismatch.errno == LinuxErrno.EINVAL)
    }

    @Test func rreadCountMismatch() {
        var bytes = Golden.rread
        bytes[7] = 6
        #expect(rError(a.bytes(bytes)) == .countMismatch)
        bytes[7] = 0
        #expect(rError(a.bytes(bytes)) == .countMismatch)
    }

    @Test func rreaddirWithATruncatedEntry() {
        // Count agrees with the payload, but the last entry stops one byte short.
        let cut = Array(Golden.rreaddir.dropLast())
        var bytes = withSize(cut)
        bytes.replaceSubrange(7..<11, with: le32(UInt32(cut.count - 11)))
        #expect(rError(a.bytes(bytes)) == .truncated)
        // An entry whose name length runs past the data.
        var long = Golden.rreaddir
        long[long.count - 3] = 2  // second name's length = 2, one byte present
        #expect(rError(a.bytes(long)) == .truncated)
        // Only part of a qid.
        let partial = [0, 0, 0, 0, MessageType.rreaddir.rawValue, 8, 0] + le32(5) + [0x80, 0, 0, 0, 0]
        #expect(rError(a.bytes(withSize(partial))) == .truncated)
    }

    @Test func stringLongerThanTheFrame() {
        var bytes = Golden.tversion
        bytes[11] = 9  // version length = 9, 8 bytes present
        #expect(tError(a.bytes(bytes)) == .truncated)
        bytes[11] = 0xFF
        bytes[12] = 0xFF
        #expect(tError(a.bytes(bytes)) == .truncated)
        #expect(WireError.truncated.errno == LinuxErrno.EINVAL)
    }

    @Test func errnoMapping() {
        let cases: [(WireError, UInt32)] = [
            (.truncated, LinuxErrno.EINVAL),
            (.badSize(3), LinuxErrno.EINVAL),
            (.tooLarge(size: 9000, msize: 8192), LinuxErrno.EMSGSIZE),
            (.unknownType(0xFF), LinuxErrno.EOPNOTSUPP),
            (.trailingBytes(2), LinuxErrno.EINVAL),
            (.tooManyWalkElements(17), LinuxErrno.EINVAL),
            (.countMismatch, LinuxErrno.EINVAL),
            // Not a decode error: the encoder ran out of buffer.
            (.noRoom, LinuxErrno.ENOMEM),
        ]
        for (error, errno) in cases {
            #expect(error.errno == errno, "\(error)")
        }
        #expect(LinuxErrno.EMSGSIZE == 90 && LinuxErrno.EOPNOTSUPP == 95 && LinuxErrno.EINVAL == 22 && LinuxErrno.ENOMEM == 12)
    }

    /// A frame inside a larger buffer (as a transport slices it) decodes the same.
    @Test func decodesFramesAtAnyOffset() throws {
        let stream = Golden.tversion + Golden.tattach + Golden.twalk
        let buffer = a.bytes([0x55] + stream)
        var offset = 1
        var decoded: [TMessage] = []
        while offset < buffer.count {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[offset...])
            let header = try FrameHeader.decode(rest, msize: 8192)
            decoded.append(try TMessage.decode(UnsafeRawBufferPointer(rebasing: rest[0..<Int(header.size)]), msize: 8192))
            offset += Int(header.size)
        }
        #expect(decoded.map(\.request.type) == [.tversion, .tattach, .twalk])
        #expect(decoded.map(\.tag) == [NineP.noTag, 1, 2])
    }
}
