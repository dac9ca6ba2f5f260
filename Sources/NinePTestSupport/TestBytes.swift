import Glibc
import NinePWire

// Deterministic data, checksums, hand-built frames and readable durations.

/// SplitMix64: a small seeded generator, so a failing run can be replayed from its seed.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Deterministic pseudo-random bytes (SplitMix64), so failures reproduce. Eight bytes per
/// step, stored whole: a byte-by-byte loop took seconds per MiB in a debug build.
public func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        let raw = UnsafeMutableRawBufferPointer(buffer)
        var offset = 0
        while offset + 8 <= count {
            raw.storeBytes(of: generator.next().littleEndian, toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        if offset < count {
            withUnsafeBytes(of: generator.next().littleEndian) { last in
                raw.baseAddress!.advanced(by: offset).copyMemory(from: last.baseAddress!, byteCount: count - offset)
            }
        }
        initialized = count
    }
}

/// FNV-1a, a checksum to compare payloads by.
public func checksum(_ bytes: [UInt8]) -> UInt64 {
    bytes.withUnsafeBufferPointer { buffer in
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in buffer {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}

/// Little-endian frame building for hand-made (malformed) messages.
public func le16(_ v: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }
public func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> ($0 * 8)) } }
public func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> UInt64($0 * 8)) } }

/// A frame: size[4] type[1] tag[2] body, with the size computed (or given, to lie).
public func frame(type: UInt8, tag: UInt16, body: [UInt8], size: Int? = nil) -> [UInt8] {
    le32(size ?? (7 + body.count)) + [type] + le16(Int(tag)) + body
}

public func wireString(_ s: String) -> [UInt8] { le16(s.utf8.count) + Array(s.utf8) }

/// Milliseconds of a duration, for messages.
public func ms(_ d: Duration) -> String {
    let (seconds, attoseconds) = d.components
    let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    if micros < 10_000 {
        let hundredths = (micros + 5) / 10
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction) ms"
    }
    return "\((micros + 500) / 1000) ms"
}

extension ByteView {
    /// Whether the view holds exactly `bytes` (memcmp: `Array(view) == bytes` goes byte by
    /// byte, seconds per MiB in a debug build).
    public func holds(_ bytes: [UInt8]) -> Bool {
        count == bytes.count && bytes.withUnsafeBytes { count == 0 || memcmp($0.baseAddress!, base.baseAddress!, count) == 0 }
    }
}
