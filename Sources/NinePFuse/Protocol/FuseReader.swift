import NinePWire

/// A bounds-checked little-endian cursor over one request (FUSE uses the host's byte order, which
/// is little-endian on every Linux this runs on). Every read checks the remaining length first,
/// so arbitrary bytes can only produce `FuseCodecError`, never a trap.
struct FuseReader {
    let bytes: UnsafeRawBufferPointer
    var offset: Int
    let opcode: UInt32

    init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0, opcode: UInt32) {
        self.bytes = bytes
        self.offset = offset
        self.opcode = opcode
    }

    var remaining: Int { bytes.count - offset }

    /// Fails unless `count` more bytes are there; used once per fixed struct so the fields after
    /// it need no check of their own to produce a useful error.
    func require(_ count: Int) throws(FuseCodecError) {
        if remaining < count { throw .truncated(opcode: opcode, needed: offset + count, have: bytes.count) }
    }

    mutating func u16() throws(FuseCodecError) -> UInt16 {
        try require(2)
        defer { offset += 2 }
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    mutating func u32() throws(FuseCodecError) -> UInt32 {
        try require(4)
        defer { offset += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    mutating func u64() throws(FuseCodecError) -> UInt64 {
        try require(8)
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    mutating func skip(_ count: Int) throws(FuseCodecError) {
        try require(count)
        offset += count
    }

    /// `count` bytes as a view into the request (no copy).
    mutating func view(count: Int) throws(FuseCodecError) -> ByteView {
        try require(count)
        defer { offset += count }
        if count == 0 { return .empty }
        return ByteView(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
    }

    /// A NUL-terminated name, as a view without the NUL.
    mutating func name() throws(FuseCodecError) -> ByteView {
        var end = offset
        while end < bytes.count && bytes[end] != 0 { end += 1 }
        guard end < bytes.count else { throw .unterminatedName(opcode: opcode) }
        let view = end == offset ? ByteView.empty : ByteView(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
        offset = end + 1
        return view
    }

    /// The rest of the request, as a view.
    mutating func rest() -> ByteView {
        defer { offset = bytes.count }
        if remaining == 0 { return .empty }
        return ByteView(UnsafeRawBufferPointer(rebasing: bytes[offset..<bytes.count]))
    }

    func expectEnd() throws(FuseCodecError) {
        if remaining != 0 { throw .trailingBytes(opcode: opcode, count: remaining) }
    }
}
