@testable import NinePWire
import Testing

/// The localio extension's messages (docs/LOCALIO.md): exact layouts, and every malformed
/// variant refused. Round trips and truncations of the samples run with the other types in
/// RoundTripTests and MalformedInputTests.
@Suite("localio wire")
struct LocalIOWireTests {
    let a = Arena()

    @Test func typesLiveOutsideEveryDialect() {
        let types: [MessageType] = [.tlocalproof, .rlocalproof, .tlocalgrant, .rlocalgrant, .tlocalrevoke, .rlocalrevoke]
        for type in types {
            // 9P2000/.u/.L stop at 127; 9P2000.e uses 150-155.
            #expect(type.rawValue >= 180, "\(type)")
        }
        #expect(types.map(\.rawValue) == [180, 181, 182, 183, 184, 185])
        #expect("\(NineP.versionLocalIO)".hasPrefix(NineP.version9P2000L + "."))
    }

    @Test func tlocalproofLayout() throws {
        let nonce = (0..<32).map { UInt8($0 * 3) }
        let frame = try encoded(.localproof(nonce: LocalNonce(a.view(nonce))), tag: 0x0102)
        #expect(frame == withSize([0, 0, 0, 0, 180, 0x02, 0x01] + nonce))
        let decoded = try TMessage.decode(a.bytes(frame), msize: bigMsize)
        #expect(decoded.request == .localproof(nonce: LocalNonce(a.view(nonce))))
    }

    @Test func aNonceOfAnyOtherLengthIsRefused() throws {
        for length in [0, 1, 31, 33, 64] {
            let nonce = [UInt8](repeating: 7, count: length)
            #expect(throws: WireError.countMismatch) { try encoded(.localproof(nonce: LocalNonce(a.view(nonce))), tag: 1) }
            let frame = withSize([0, 0, 0, 0, 180, 1, 0] + nonce)
            let expected: WireError = length < 32 ? .truncated : .trailingBytes(length - 32)
            #expect(tError(a.bytes(frame)) == expected, "nonce of \(length) bytes")
        }
    }

    @Test func tlocalgrantAndRlocalgrantLayout() throws {
        let t = try encoded(.localgrant(fid: 0x0A0B_0C0D), tag: 3)
        #expect(t == withSize([0, 0, 0, 0, 182, 3, 0, 0x0D, 0x0C, 0x0B, 0x0A]))
        let r = try encoded(Response.localgrant(flags: OpenFlags.readOnly), tag: 3)
        #expect(r == withSize([0, 0, 0, 0, 183, 3, 0, 0, 0, 0, 0]))
        #expect(tError(a.bytes(withSize([0, 0, 0, 0, 182, 3, 0, 1, 2, 3])))  == .truncated)
        #expect(tError(a.bytes(withSize([0, 0, 0, 0, 182, 3, 0, 1, 2, 3, 4, 5]))) == .trailingBytes(1))
    }

    @Test func rlocalrevokeCountsMustMatch() throws {
        let fids: [UInt32] = [1, 0xFFFF_FFFE, 42]
        let body = fids.flatMap(le32)
        let frame = try encoded(Response.localrevoke(fids: FidList(encoded: a.view(body))), tag: NineP.noTag)
        #expect(frame == withSize([0, 0, 0, 0, 185, 0xFF, 0xFF] + le16(3) + body))
        let decoded = try RMessage.decode(a.bytes(frame), msize: bigMsize)
        guard case let .localrevoke(list) = decoded.response else {
            Issue.record("decoded \(decoded.response)")
            return
        }
        #expect(Array(list) == fids)
        // A count naming more fids than the frame holds, or fewer.
        #expect(rError(a.bytes(withSize([0, 0, 0, 0, 185, 0, 0] + le16(4) + body))) == .truncated)
        #expect(rError(a.bytes(withSize([0, 0, 0, 0, 185, 0, 0] + le16(2) + body))) == .trailingBytes(4))
        // More than maxRevokedFids is refused before reading them.
        let many = withSize([0, 0, 0, 0, 185, 0, 0] + le16(NineP.maxRevokedFids + 1) + [UInt8](repeating: 0, count: 4 * (NineP.maxRevokedFids + 1)))
        #expect(rError(a.bytes(many)) == .countMismatch)
    }

    @Test func theLocalMessagesAreNotRequestsInTheOtherDirection() {
        // An R-type where a T-message is expected (and the reverse) is an unknown type.
        #expect(tError(a.bytes(withSize([0, 0, 0, 0, 183, 1, 0, 0, 0, 0, 0]))) == .unknownType(183))
        #expect(rError(a.bytes(withSize([0, 0, 0, 0, 182, 1, 0, 0, 0, 0, 0]))) == .unknownType(182))
    }
}

/// A trace log shows a Tlocalproof's length, never its nonce.
@Test func theNonceIsNeverLogged() {
    let a = Arena()
    let nonce = [UInt8](repeating: 0x41, count: 32)  // "AAAA..." would be printed as is
    let logged = "\(Request.localproof(nonce: LocalNonce(a.view(nonce))))"
    #expect(!logged.contains("AAAA"), "nonce bytes in \(logged)")
    #expect(logged.contains("32 bytes"), "\(logged)")
}
