import NinePWire

/// A Tread's data left where it arrived, in the connection's message buffer for the call's
/// slot, which stays taken until `release()`. For a caller that writes the data on (the FUSE
/// mount's read-ahead answers a READ with it) without copying it first.
///
/// Release exactly once: until then one of the connection's request slots is taken. The
/// buffer is the connection's and lives as long as it does; nothing writes to it while the
/// slot is taken.
public struct KeptRead: @unchecked Sendable {
    // @unchecked Sendable: `data` points into a message buffer that only this value's holder
    // reads until `release()` (the slot is reserved for it), and `connection` is Sendable.
    /// The bytes read (fewer than asked at the end of the file).
    public let data: UnsafeRawBufferPointer
    let connection: ClientConnection
    let slot: Int

    /// Frees the request slot; `data` must not be read after.
    public func release() { connection.releaseKept(slot) }
}

extension RemoteFile {
    /// One Tread of at most `count` (and `ioSize`) bytes at `offset`, its data left in the
    /// message buffer it arrived in (`KeptRead`). Through 9P only: a localio grant's reads are
    /// a local pread away and are not kept.
    public func readKept(count: Int, at offset: UInt64) async throws -> KeptRead {
        try checkUsable(.read)
        let fid = self.fid
        let count = UInt32(min(count, ioSize))
        let connection = self.connection
        do {
            let (data, slot) = try await connection.call(.read, timeout: client.callTimeout, keepingReply: true) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.read(fid: fid, offset: offset, count: count).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case let .read(data) = response, data.count <= Int(count) else { throw .protocolViolation(.read) }
                return UnsafeRawBufferPointerBox(data.base)
            }
            return KeptRead(data: data.bytes, connection: connection, slot: slot)
        } catch let error as NinePError {
            throw error.at(path)
        }
    }
}

/// Carries a view of a kept reply out of `decode`. `@unchecked Sendable`: see `KeptRead`.
struct UnsafeRawBufferPointerBox: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
}
