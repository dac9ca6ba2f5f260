/// Appends little-endian fields to a caller's buffer; never allocates. Every write checks the
/// room left, so a reply that does not fit is `FuseCodecError.noRoom`, never a trap.
public struct FuseWriter {
    public let buffer: UnsafeMutableRawBufferPointer
    public private(set) var offset: Int

    public init(_ buffer: UnsafeMutableRawBufferPointer, offset: Int = 0) {
        self.buffer = buffer
        self.offset = offset
    }

    public var remaining: Int { buffer.count - offset }

    func require(_ count: Int) throws(FuseCodecError) {
        if remaining < count { throw .noRoom(needed: offset + count, available: buffer.count) }
    }

    public mutating func u16(_ value: UInt16) throws(FuseCodecError) {
        try require(2)
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self)
        offset += 2
    }

    public mutating func u32(_ value: UInt32) throws(FuseCodecError) {
        try require(4)
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
        offset += 4
    }

    public mutating func i32(_ value: Int32) throws(FuseCodecError) { try u32(UInt32(bitPattern: value)) }

    public mutating func u64(_ value: UInt64) throws(FuseCodecError) {
        try require(8)
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
        offset += 8
    }

    public mutating func zeros(_ count: Int) throws(FuseCodecError) {
        try require(count)
        if count > 0 { UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + count)]).initializeMemory(as: UInt8.self, repeating: 0) }
        offset += count
    }

    public mutating func bytes(_ source: UnsafeRawBufferPointer) throws(FuseCodecError) {
        try require(source.count)
        if source.count > 0 { UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + source.count)]).copyMemory(from: source) }
        offset += source.count
    }

    /// Moves the end forward over `count` bytes that the caller filled in place (a READ's data).
    public mutating func advance(_ count: Int) throws(FuseCodecError) {
        try require(count)
        offset += count
    }

    /// Overwrites a u32 already written at `position` (the length in the header).
    mutating func patchU32(_ value: UInt32, at position: Int) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: position, as: UInt32.self)
    }
}
