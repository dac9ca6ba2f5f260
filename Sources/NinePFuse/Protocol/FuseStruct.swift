/// A fixed-layout struct of the FUSE protocol: read from and written to raw buffers field by
/// field (no memory-layout assumptions about Swift structs), both ways so tests can round-trip.
public protocol FuseStruct: Equatable, Sendable {
    /// Bytes on the wire.
    static var wireSize: Int { get }
    init(reading reader: inout FuseReaderCursor) throws(FuseCodecError)
    func write(to writer: inout FuseWriter) throws(FuseCodecError)
}

/// The public face of `FuseReader` for `FuseStruct` conformances and tests.
public struct FuseReaderCursor {
    var reader: FuseReader

    public init(_ bytes: UnsafeRawBufferPointer, opcode: UInt32 = 0) {
        reader = FuseReader(bytes, opcode: opcode)
    }

    init(_ reader: FuseReader) { self.reader = reader }

    public var offset: Int { reader.offset }
    public var remaining: Int { reader.remaining }
    public mutating func u16() throws(FuseCodecError) -> UInt16 { try reader.u16() }
    public mutating func u32() throws(FuseCodecError) -> UInt32 { try reader.u32() }
    public mutating func u64() throws(FuseCodecError) -> UInt64 { try reader.u64() }
    public mutating func skip(_ count: Int) throws(FuseCodecError) { try reader.skip(count) }
    public func require(_ count: Int) throws(FuseCodecError) { try reader.require(count) }
    public func expectEnd() throws(FuseCodecError) { try reader.expectEnd() }
}

extension FuseStruct {
    /// Decodes one struct from exactly `bytes` (trailing bytes are an error).
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(FuseCodecError) -> Self {
        var cursor = FuseReaderCursor(bytes)
        let value = try Self(reading: &cursor)
        try cursor.expectEnd()
        return value
    }
}
