/// Why bytes read from /dev/fuse are not a request this codec understands, or why a reply does
/// not fit its buffer. Decoding never traps: every input decodes or yields one of these.
public enum FuseCodecError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ends before a field the opcode requires.
    case truncated(opcode: UInt32, needed: Int, have: Int)
    /// `fuse_in_header.len` disagrees with the number of bytes read.
    case lengthMismatch(header: UInt32, read: Int)
    /// Bytes left over after the last field of a fixed-size request.
    case trailingBytes(opcode: UInt32, count: Int)
    /// A name that is not terminated by NUL inside the request.
    case unterminatedName(opcode: UInt32)
    /// A WRITE or SETXATTR whose size field disagrees with the payload.
    case sizeMismatch(opcode: UInt32, declared: UInt32, present: Int)
    /// The reply does not fit the caller's buffer.
    case noRoom(needed: Int, available: Int)

    public var description: String {
        switch self {
        case let .truncated(opcode, needed, have):
            "FUSE request \(FuseOpcode(rawValue: opcode)) truncated: needs \(needed) bytes, has \(have)"
        case let .lengthMismatch(header, read):
            "FUSE request header says \(header) bytes but \(read) were read"
        case let .trailingBytes(opcode, count):
            "FUSE request \(FuseOpcode(rawValue: opcode)) has \(count) unexpected trailing bytes"
        case let .unterminatedName(opcode):
            "FUSE request \(FuseOpcode(rawValue: opcode)) carries a name without its terminating NUL"
        case let .sizeMismatch(opcode, declared, present):
            "FUSE request \(FuseOpcode(rawValue: opcode)) declares \(declared) bytes of data but carries \(present)"
        case let .noRoom(needed, available):
            "FUSE reply needs \(needed) bytes but the buffer has \(available)"
        }
    }
}
