import NinePWire

/// Packs directory entries into a READDIR or READDIRPLUS reply: `fuse_dirent` (24 bytes and the
/// name) or `fuse_direntplus` (a `fuse_entry_out` before it), each padded to 8 bytes
/// (FUSE_DIRENT_ALIGN). Stops at the first entry that does not fit whole: the kernel continues
/// from the `offset` of the last entry it got.
public struct FuseDirentPacker {
    public static let alignment = 8
    public static let direntHeaderSize = 24

    /// Bytes one entry with a name of `nameLength` bytes takes, padding included.
    public static func direntSize(nameLength: Int, plus: Bool = false) -> Int {
        let bare = direntHeaderSize + nameLength
        let padded = (bare + alignment - 1) & ~(alignment - 1)
        return plus ? FuseEntryOut.wireSize + padded : padded
    }

    public private(set) var writer: FuseWriter
    /// The room the kernel asked for (`fuse_read_in.size`), at most the buffer.
    let limit: Int
    public private(set) var count = 0

    /// Packs after the out header already written in `writer`, up to `size` bytes of entries.
    public init(continuing writer: FuseWriter, size: Int) {
        self.writer = writer
        self.limit = min(writer.buffer.count, writer.offset + size)
    }

    /// Appends one entry; false (and nothing written) when it does not fit.
    /// `offset` is where the listing continues after this entry; `type` is the DT_* type.
    public mutating func append(ino: UInt64, offset: UInt64, type: UInt32, name: ByteView) -> Bool {
        let size = Self.direntSize(nameLength: name.count)
        guard writer.offset + size <= limit else { return false }
        do {
            try writeDirent(ino: ino, offset: offset, type: type, name: name, size: size)
        } catch {
            return false
        }
        count += 1
        return true
    }

    /// Appends one READDIRPLUS entry (its `entry.nodeID` 0: no lookup was counted).
    public mutating func appendPlus(_ entry: FuseEntryOut, offset: UInt64, type: UInt32, name: ByteView) -> Bool {
        let size = Self.direntSize(nameLength: name.count, plus: true)
        guard writer.offset + size <= limit else { return false }
        do {
            try entry.write(to: &writer)
            try writeDirent(ino: entry.attr.ino, offset: offset, type: type, name: name, size: size - FuseEntryOut.wireSize)
        } catch {
            return false
        }
        count += 1
        return true
    }

    /// Appends one READDIRPLUS entry whose `fuse_entry_out` is left zero (node id 0: no lookup)
    /// for the caller to fill in later with `fillEntry`; returns where that `fuse_entry_out`
    /// starts in the buffer, or nil (and nothing written) when the entry does not fit.
    public mutating func reservePlus(ino: UInt64, offset: UInt64, type: UInt32, name: ByteView) -> Int? {
        let size = Self.direntSize(nameLength: name.count, plus: true)
        guard writer.offset + size <= limit else { return nil }
        let position = writer.offset
        do {
            try writer.zeros(FuseEntryOut.wireSize)
            try writeDirent(ino: ino, offset: offset, type: type, name: name, size: size - FuseEntryOut.wireSize)
        } catch {
            return nil
        }
        count += 1
        return position
    }

    /// The name of the READDIRPLUS entry whose `fuse_entry_out` starts at `position` in `buffer`
    /// (as `reservePlus` wrote it), and where the next entry starts.
    public static func plusEntry(in buffer: UnsafeRawBufferPointer, at position: Int) -> (name: ByteView, next: Int) {
        let dirent = position + FuseEntryOut.wireSize
        let length = Int(UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: dirent + 16, as: UInt32.self)))
        let name = ByteView(UnsafeRawBufferPointer(rebasing: buffer[(dirent + direntHeaderSize)..<(dirent + direntHeaderSize + length)]))
        return (name, position + direntSize(nameLength: length, plus: true))
    }

    /// Writes `entry` over the `fuse_entry_out` reserved at `position`.
    public static func fillEntry(_ entry: FuseEntryOut, in buffer: UnsafeMutableRawBufferPointer, at position: Int) {
        var writer = FuseWriter(UnsafeMutableRawBufferPointer(rebasing: buffer[position..<(position + FuseEntryOut.wireSize)]))
        // Cannot fail: exactly the struct's size.
        try? entry.write(to: &writer)
    }

    private mutating func writeDirent(ino: UInt64, offset: UInt64, type: UInt32, name: ByteView, size: Int) throws(FuseCodecError) {
        try writer.u64(ino); try writer.u64(offset); try writer.u32(UInt32(name.count)); try writer.u32(type)
        try writer.bytes(name.base)
        try writer.zeros(size - Self.direntHeaderSize - name.count)
    }
}

/// One `fuse_dirent` read back from a reply (tests, and a fake kernel).
public struct FuseDirent: Equatable, Sendable {
    public var ino: UInt64
    public var offset: UInt64
    public var type: UInt32
    public var name: [UInt8]

    public init(ino: UInt64, offset: UInt64, type: UInt32, name: [UInt8]) {
        self.ino = ino
        self.offset = offset
        self.type = type
        self.name = name
    }

    /// Reads the entries packed in `bytes` (a READDIR reply body).
    public static func unpack(_ bytes: UnsafeRawBufferPointer) throws(FuseCodecError) -> [FuseDirent] {
        var result: [FuseDirent] = []
        var r = FuseReader(bytes, opcode: FuseOpcode.readdir.rawValue)
        while r.remaining > 0 {
            let start = r.offset
            let ino = try r.u64()
            let offset = try r.u64()
            let length = try r.u32()
            let type = try r.u32()
            let name = try r.view(count: Int(length))
            try r.skip(FuseDirentPacker.direntSize(nameLength: Int(length)) - (r.offset - start))
            result.append(FuseDirent(ino: ino, offset: offset, type: type, name: Array(name)))
        }
        return result
    }
}
