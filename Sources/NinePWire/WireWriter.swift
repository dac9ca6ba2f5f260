/// Anything that can be written as a 9P string[s] or payload without going through an
/// intermediate array: decoded views, Swift strings, static strings and byte arrays.
public protocol WireBytes {
    var wireByteCount: Int { get }
    func copyWireBytes(to destination: UnsafeMutableRawPointer)
}

extension ByteView: WireBytes {
    @inlinable public var wireByteCount: Int { base.count }
    @inlinable public func copyWireBytes(to destination: UnsafeMutableRawPointer) {
        if let start = base.baseAddress { destination.copyMemory(from: start, byteCount: base.count) }
    }
}

extension String: WireBytes {
    @inlinable public var wireByteCount: Int { utf8.count }
    @inlinable public func copyWireBytes(to destination: UnsafeMutableRawPointer) {
        var offset = 0
        for byte in utf8 {
            destination.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
    }
}

extension StaticString: WireBytes {
    @inlinable public var wireByteCount: Int { utf8CodeUnitCount }
    @inlinable public func copyWireBytes(to destination: UnsafeMutableRawPointer) {
        destination.copyMemory(from: utf8Start, byteCount: utf8CodeUnitCount)
    }
}

extension Array: WireBytes where Element == UInt8 {
    @inlinable public var wireByteCount: Int { count }
    @inlinable public func copyWireBytes(to destination: UnsafeMutableRawPointer) {
        withUnsafeBytes { if let start = $0.baseAddress { destination.copyMemory(from: start, byteCount: $0.count) } }
    }
}

/// A little-endian cursor that encodes one frame into caller-owned memory. Each write checks
/// the room left and throws `WireError.noRoom` instead of overrunning.
public struct WireWriter {
    public let buffer: UnsafeMutableRawBufferPointer
    @usableFromInline var _offset: Int
    @inlinable public var offset: Int { _offset }
    @usableFromInline var frameStart: Int

    @inlinable
    public init(_ buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
        self._offset = 0
        self.frameStart = 0
    }

    @inlinable public var remaining: Int { buffer.count - offset }

    /// Starts a frame: size (patched by `finishFrame`), type, tag.
    @inlinable
    public mutating func beginFrame(_ type: MessageType, tag: UInt16) throws(WireError) {
        frameStart = offset
        try u32(0)
        try u8(type.rawValue)
        try u16(tag)
    }

    /// Patches the size field and returns the frame's length in bytes.
    @inlinable
    @discardableResult
    public mutating func finishFrame() -> Int {
        let size = offset - frameStart
        buffer.storeBytes(of: UInt32(truncatingIfNeeded: size).littleEndian, toByteOffset: frameStart, as: UInt32.self)
        return size
    }

    /// The encoded frame(s) so far.
    @inlinable
    public var written: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[0..<offset]) }

    @inlinable
    public mutating func u8(_ value: UInt8) throws(WireError) {
        guard remaining >= 1 else { throw .noRoom }
        buffer.storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
        _offset += 1
    }

    @inlinable
    public mutating func u16(_ value: UInt16) throws(WireError) {
        guard remaining >= 2 else { throw .noRoom }
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self)
        _offset += 2
    }

    @inlinable
    public mutating func u32(_ value: UInt32) throws(WireError) {
        guard remaining >= 4 else { throw .noRoom }
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
        _offset += 4
    }

    @inlinable
    public mutating func u64(_ value: UInt64) throws(WireError) {
        guard remaining >= 8 else { throw .noRoom }
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
        _offset += 8
    }

    @inlinable
    public mutating func qid(_ qid: Qid) throws(WireError) {
        guard remaining >= Qid.wireSize else { throw .noRoom }
        try u8(qid.type)
        try u32(qid.version)
        try u64(qid.path)
    }

    /// string[s]; strings longer than 65535 bytes cannot be encoded.
    @inlinable
    public mutating func string(_ value: some WireBytes) throws(WireError) {
        let count = value.wireByteCount
        guard count <= 0xFFFF, remaining >= 2 + count else { throw .noRoom }
        try u16(UInt16(count))
        if count > 0 { value.copyWireBytes(to: buffer.baseAddress! + offset) }
        _offset += count
    }

    /// Raw bytes without a length prefix.
    @inlinable
    public mutating func bytes(_ value: some WireBytes) throws(WireError) {
        let count = value.wireByteCount
        guard remaining >= count else { throw .noRoom }
        if count > 0 { value.copyWireBytes(to: buffer.baseAddress! + offset) }
        _offset += count
    }

    /// Reserves `count` bytes (for data produced in place, e.g. by pread) and returns them.
    @inlinable
    public mutating func reserve(_ count: Int) throws(WireError) -> UnsafeMutableRawBufferPointer {
        guard count >= 0, remaining >= count else { throw .noRoom }
        defer { _offset += count }
        return UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + count)])
    }

    /// Gives back the tail of a reservation that was not filled.
    @inlinable
    public mutating func unreserve(_ count: Int) {
        precondition(count >= 0 && count <= offset - frameStart)
        _offset -= count
    }

    /// Overwrites a u32 at an absolute offset (used for counts known only at the end).
    @inlinable
    public mutating func patchU32(_ value: UInt32, at position: Int) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: position, as: UInt32.self)
    }
}
