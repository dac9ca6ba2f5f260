/// size[4] type[1] tag[2], the start of every message.
@frozen
public struct FrameHeader: Equatable, Sendable {
    public var size: UInt32
    public var type: UInt8
    public var tag: UInt16

    public init(size: UInt32, type: UInt8, tag: UInt16) {
        self.size = size
        self.type = type
        self.tag = tag
    }

    /// Reads the header from the first 7 bytes and checks the size against `msize`.
    /// Transports call this before reading the body, to know how much to read.
    @inlinable
    public static func decode(_ bytes: UnsafeRawBufferPointer, msize: UInt32) throws(WireError) -> FrameHeader {
        var reader = WireReader(bytes)
        let size = try reader.u32()
        let type = try reader.u8()
        let tag = try reader.u16()
        if size < UInt32(NineP.headerSize) { throw .badSize(size) }
        if size > msize { throw .tooLarge(size: size, msize: msize) }
        return FrameHeader(size: size, type: type, tag: tag)
    }
}
