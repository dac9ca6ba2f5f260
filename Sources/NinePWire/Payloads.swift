/// Field groups shared by several messages.

/// Tsetattr's fields after the fid.
@frozen
public struct SetattrFields: Equatable, Sendable {
    public var valid: UInt32
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    public var atimeSeconds: UInt64
    public var atimeNanoseconds: UInt64
    public var mtimeSeconds: UInt64
    public var mtimeNanoseconds: UInt64

    public init(
        valid: UInt32, mode: UInt32 = 0, uid: UInt32 = 0, gid: UInt32 = 0, size: UInt64 = 0,
        atimeSeconds: UInt64 = 0, atimeNanoseconds: UInt64 = 0, mtimeSeconds: UInt64 = 0, mtimeNanoseconds: UInt64 = 0
    ) {
        self.valid = valid
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.atimeSeconds = atimeSeconds
        self.atimeNanoseconds = atimeNanoseconds
        self.mtimeSeconds = mtimeSeconds
        self.mtimeNanoseconds = mtimeNanoseconds
    }
}

/// Tlock's fields after the fid.
@frozen
public struct LockFields: Equatable {
    public var type: UInt8
    public var flags: UInt32
    public var start: UInt64
    public var length: UInt64
    public var processID: UInt32
    public var clientID: ByteView

    public init(type: UInt8, flags: UInt32, start: UInt64, length: UInt64, processID: UInt32, clientID: ByteView) {
        self.type = type
        self.flags = flags
        self.start = start
        self.length = length
        self.processID = processID
        self.clientID = clientID
    }
}

/// Tgetlock's fields after the fid, and Rgetlock's whole body.
@frozen
public struct GetlockFields: Equatable {
    public var type: UInt8
    public var start: UInt64
    public var length: UInt64
    public var processID: UInt32
    public var clientID: ByteView

    public init(type: UInt8, start: UInt64, length: UInt64, processID: UInt32, clientID: ByteView) {
        self.type = type
        self.start = start
        self.length = length
        self.processID = processID
        self.clientID = clientID
    }
}

/// Rstatfs's body.
@frozen
public struct StatfsFields: Equatable, Sendable {
    public var type: UInt32
    public var blockSize: UInt32
    public var blocks: UInt64
    public var blocksFree: UInt64
    public var blocksAvailable: UInt64
    public var files: UInt64
    public var filesFree: UInt64
    public var fsid: UInt64
    public var nameLength: UInt32

    public init(
        type: UInt32, blockSize: UInt32, blocks: UInt64, blocksFree: UInt64, blocksAvailable: UInt64,
        files: UInt64, filesFree: UInt64, fsid: UInt64, nameLength: UInt32
    ) {
        self.type = type
        self.blockSize = blockSize
        self.blocks = blocks
        self.blocksFree = blocksFree
        self.blocksAvailable = blocksAvailable
        self.files = files
        self.filesFree = filesFree
        self.fsid = fsid
        self.nameLength = nameLength
    }
}

/// Rgetattr's body.
@frozen
public struct Attributes: Equatable, Sendable {
    public var valid: UInt64 = 0
    public var qid = Qid(type: 0, version: 0, path: 0)
    public var mode: UInt32 = 0
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var nlink: UInt64 = 0
    public var rdev: UInt64 = 0
    public var size: UInt64 = 0
    public var blockSize: UInt64 = 0
    public var blocks: UInt64 = 0
    public var atimeSeconds: UInt64 = 0
    public var atimeNanoseconds: UInt64 = 0
    public var mtimeSeconds: UInt64 = 0
    public var mtimeNanoseconds: UInt64 = 0
    public var ctimeSeconds: UInt64 = 0
    public var ctimeNanoseconds: UInt64 = 0
    public var btimeSeconds: UInt64 = 0
    public var btimeNanoseconds: UInt64 = 0
    public var generation: UInt64 = 0
    public var dataVersion: UInt64 = 0

    public init() {}

    /// valid[8] qid[13] mode[4] uid[4] gid[4] and fifteen 8-byte fields.
    public static let wireSize = 8 + 13 + 4 * 3 + 8 * 15
}

/// The names of a Twalk, as a view of their encoded bytes (validated when decoded).
public struct WalkNames: Sequence, Equatable {
    public let count: Int
    @usableFromInline let encoded: ByteView

    @inlinable
    init(count: Int, encoded: ByteView) {
        self.count = count
        self.encoded = encoded
    }

    public struct Iterator: IteratorProtocol {
        @usableFromInline var reader: WireReader
        @usableFromInline var left: Int

        @inlinable
        init(reader: WireReader, left: Int) {
            self.reader = reader
            self.left = left
        }

        @inlinable
        public mutating func next() -> ByteView? {
            guard left > 0 else { return nil }
            left -= 1
            // Validated at decode time, so this cannot fail.
            return try? reader.string()
        }
    }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(reader: WireReader(encoded.base), left: count) }
}

/// The qids of an Rwalk, as a view of their encoded bytes.
public struct QidList: RandomAccessCollection, Equatable {
    @usableFromInline let encoded: ByteView

    @inlinable init(encoded: ByteView) { self.encoded = encoded }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { encoded.count / Qid.wireSize }

    @inlinable
    public subscript(position: Int) -> Qid {
        var reader = WireReader(encoded.base, offset: position * Qid.wireSize)
        return (try? reader.qid()) ?? Qid(type: 0, version: 0, path: 0)
    }
}

/// One entry of an Rreaddir: qid[13] offset[8] type[1] name[s].
public struct DirEntry: Equatable {
    public var qid: Qid
    public var offset: UInt64
    public var type: UInt8
    public var name: ByteView

    public init(qid: Qid, offset: UInt64, type: UInt8, name: ByteView) {
        self.qid = qid
        self.offset = offset
        self.type = type
        self.name = name
    }

    /// The encoded size of an entry with a name of `nameLength` bytes.
    @inlinable
    public static func wireSize(nameLength: Int) -> Int { 13 + 8 + 1 + 2 + nameLength }
}

/// The data of an Rreaddir, iterated as entries; malformed tails end the iteration with an
/// error recorded in `malformed`.
public struct DirEntries: Sequence, Equatable {
    public let data: ByteView

    @inlinable public init(data: ByteView) { self.data = data }

    public struct Iterator: IteratorProtocol {
        @usableFromInline var reader: WireReader

        @inlinable init(reader: WireReader) { self.reader = reader }

        @inlinable
        public mutating func next() -> DirEntry? {
            guard reader.remaining > 0 else { return nil }
            do {
                let qid = try reader.qid()
                let offset = try reader.u64()
                let type = try reader.u8()
                let name = try reader.string()
                return DirEntry(qid: qid, offset: offset, type: type, name: name)
            } catch {
                return nil
            }
        }
    }

    @inlinable public func makeIterator() -> Iterator { Iterator(reader: WireReader(data.base)) }

    /// Checks that the data is a whole number of well-formed entries.
    public func validate() throws(WireError) {
        var reader = WireReader(data.base)
        while reader.remaining > 0 {
            _ = try reader.qid()
            _ = try reader.u64()
            _ = try reader.u8()
            _ = try reader.string()
        }
    }
}

/// Appends entries to an Rreaddir under construction; refuses an entry that does not fit.
public struct DirEntryWriter {
    @usableFromInline var writer: WireWriter
    @usableFromInline let countPosition: Int
    @usableFromInline let dataStart: Int
    @usableFromInline let limit: Int

    /// Starts an Rreaddir frame whose data may hold up to `maxCount` bytes.
    @inlinable
    public init(into buffer: UnsafeMutableRawBufferPointer, tag: UInt16, maxCount: Int) throws(WireError) {
        var writer = WireWriter(buffer)
        try writer.beginFrame(.rreaddir, tag: tag)
        countPosition = writer.offset
        try writer.u32(0)
        dataStart = writer.offset
        // Clamp before adding: a huge maxCount (e.g. Int.max for "no limit") must not overflow.
        limit = dataStart + min(max(maxCount, 0), buffer.count - dataStart)
        self.writer = writer
    }

    /// Appends one entry; returns false (and writes nothing) when it would not fit.
    @inlinable
    public mutating func append(qid: Qid, offset: UInt64, type: UInt8, name: some WireBytes) -> Bool {
        let size = DirEntry.wireSize(nameLength: name.wireByteCount)
        guard name.wireByteCount <= 0xFFFF, writer.offset + size <= limit else { return false }
        do {
            try writer.qid(qid)
            try writer.u64(offset)
            try writer.u8(type)
            try writer.string(name)
        } catch {
            return false
        }
        return true
    }

    @inlinable public var dataCount: Int { writer.offset - dataStart }

    /// Finishes the frame and returns its length.
    @inlinable
    public mutating func finish() -> Int {
        writer.patchU32(UInt32(dataCount), at: countPosition)
        return writer.finishFrame()
    }
}

/// Rlocalrevoke's fids: fid[4] each, viewed in place.
public struct FidList: RandomAccessCollection, Equatable {
    public let encoded: ByteView

    /// `encoded` holds fid[4] values back to back (its length a multiple of 4).
    @inlinable public init(encoded: ByteView) { self.encoded = encoded }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { encoded.count / 4 }

    @inlinable
    public subscript(position: Int) -> UInt32 {
        UInt32(littleEndian: encoded.base.loadUnaligned(fromByteOffset: position * 4, as: UInt32.self))
    }
}

/// Tlocalproof's nonce (docs/LOCALIO.md). Logs show only its length: a trace log is no place
/// for a session's proof of locality, even one bound to that session.
public struct LocalNonce: Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let bytes: ByteView

    @inlinable public init(_ bytes: ByteView) { self.bytes = bytes }

    public var description: String { "<nonce of \(bytes.count) bytes>" }
    public var debugDescription: String { description }
}
