import NinePWire
import Testing

/// What `--log-level trace` prints of client bytes: never a raw control byte, never a whole
/// payload.
struct LogDescriptionTests {
    @Test func namesWithControlBytesAreEscaped() {
        let name: [UInt8] = Array("ok".utf8) + [0x1b, 0x5b, 0x32, 0x4a, 0x00, 0xff, 0x22, 0x5c]  // ESC [ 2 J NUL 0xff " \
        name.withUnsafeBytes { bytes in
            let view = ByteView(bytes)
            #expect(view.debugDescription == #""ok\x1b[2J\x00\xff\"\\""#)
            let request = Request.lcreate(fid: 1, name: view, flags: 0, mode: 0o644, gid: 0)
            let logged = "\(request)"
            #expect(!logged.utf8.contains(0x1b) && !logged.utf8.contains(0x00), "raw bytes in \(logged)")
            #expect(logged.contains(#"\x1b[2J"#), "the name is not shown escaped: \(logged)")
        }
    }

    @Test func walkNamesAndLongPayloadsAreShortAndEscaped() throws {
        // Twalk tag 1, fid 0 -> newfid 1, names "a\u{7}" and "b", laid out by hand.
        func le(_ value: UInt32, _ bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        let body: [UInt8] = [110] + le(1, 2) + le(0, 4) + le(1, 4) + le(2, 2) + le(2, 2) + [0x61, 0x07] + le(1, 2) + [0x62]
        let frame = le(UInt32(body.count + 4), 4) + body
        let length = frame.count
        try frame.withUnsafeBytes { raw in
            let message = try TMessage.decode(UnsafeRawBufferPointer(rebasing: raw[0..<length]), msize: 8192)
            let logged = "\(message.request)"
            #expect(logged.contains(#"["a\x07", "b"]"#), "walk names: \(logged)")
        }
        let payload = [UInt8](repeating: 0x41, count: 1 << 20)
        payload.withUnsafeBytes { bytes in
            let logged = ByteView(bytes).debugDescription
            #expect(logged.count < 100 && logged.hasSuffix("... (1048576 bytes)"), "a 1 MiB payload logged as \(logged.count) characters")
        }
    }
}
