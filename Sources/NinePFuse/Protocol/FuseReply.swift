/// Writes one reply into a caller's buffer: the out header first (its length patched by
/// `finish`), then the body. Nothing is allocated.
///
///     var reply = try FuseReply(into: buffer, unique: header.unique)
///     try entry.write(to: &reply.writer)
///     let length = reply.finish()
public struct FuseReply {
    public var writer: FuseWriter

    public init(into buffer: UnsafeMutableRawBufferPointer, unique: UInt64) throws(FuseCodecError) {
        writer = FuseWriter(buffer)
        try FuseOutHeader(length: 0, error: 0, unique: unique).write(to: &writer)
    }

    /// Patches the length and returns the number of bytes to write to /dev/fuse.
    public mutating func finish() -> Int {
        writer.patchU32(UInt32(writer.offset), at: 0)
        return writer.offset
    }

    /// An error reply: the header alone with `-errno` (errno > 0). Returns its length (16).
    public static func error(_ errno: Int32, unique: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FuseCodecError) -> Int {
        var writer = FuseWriter(buffer)
        try FuseOutHeader(length: UInt32(FuseOutHeader.wireSize), error: -errno, unique: unique).write(to: &writer)
        return writer.offset
    }

    /// A reply with one fixed struct as its body.
    public static func with<T: FuseStruct>(_ body: T, unique: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FuseCodecError) -> Int {
        var reply = try FuseReply(into: buffer, unique: unique)
        try body.write(to: &reply.writer)
        return reply.finish()
    }

    /// A reply with no body (success for UNLINK, RELEASE, FLUSH, ...).
    public static func empty(unique: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FuseCodecError) -> Int {
        var reply = try FuseReply(into: buffer, unique: unique)
        return reply.finish()
    }
}
