/// A bounds-checked little-endian cursor over one frame. Every read checks the remaining
/// length first, so arbitrary input can only produce `WireError.truncated`, never a trap.
@usableFromInline
struct WireReader {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    @usableFromInline var offset: Int

    @inlinable
    init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    @inlinable var remaining: Int { bytes.count - offset }

    @inlinable
    mutating func u8() throws(WireError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated }
        defer { offset += 1 }
        return bytes[offset]
    }

    @inlinable
    mutating func u16() throws(WireError) -> UInt16 {
        guard remaining >= 2 else { throw .truncated }
        defer { offset += 2 }
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable
    mutating func u32() throws(WireError) -> UInt32 {
        guard remaining >= 4 else { throw .truncated }
        defer { offset += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable
    mutating func u64() throws(WireError) -> UInt64 {
        guard remaining >= 8 else { throw .truncated }
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inlinable
    mutating func view(count: Int) throws(WireError) -> ByteView {
        guard count >= 0, remaining >= count else { throw .truncated }
        defer { offset += count }
        if count == 0 { return .empty }
        return ByteView(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
    }

    /// string[s]: len[2] then that many bytes.
    @inlinable
    mutating func string() throws(WireError) -> ByteView {
        let length = try u16()
        return try view(count: Int(length))
    }

    @inlinable
    mutating func qid() throws(WireError) -> Qid {
        let type = try u8()
        let version = try u32()
        let path = try u64()
        return Qid(type: type, version: version, path: path)
    }

    @inlinable
    func expectEnd() throws(WireError) {
        if remaining != 0 { throw .trailingBytes(remaining) }
    }
}
