import Glibc
import NinePWire

/// Extended attributes: Txattrwalk makes a fid whose content is the value (or, for the empty
/// name, the NUL-separated list of names); Txattrcreate turns a fid into one that takes the
/// value by Twrite and sets it on Tclunk.
extension NinePClient {
    /// The value of extended attribute `name` of `path`.
    public func xattr(_ path: String, name: String) async throws -> [UInt8] {
        try await withFid(path) { fid in try await readXattr(fid: fid, name: name, path: path) }
    }

    /// The names of the extended attributes of `path`.
    public func xattrNames(_ path: String) async throws -> [String] {
        let list = try await withFid(path) { fid in try await readXattr(fid: fid, name: "", path: path) }
        return list.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Sets extended attribute `name` of `path` to `value` (`flags`: 0, XATTR_CREATE 1 or
    /// XATTR_REPLACE 2).
    public func setXattr(_ path: String, name: String, value: [UInt8], flags: UInt32 = 0) async throws {
        let file = try await walk(path)
        let fid = file.fid
        do {
            try await call(.xattrcreate, path) { (w: inout WireWriter, tag) throws(WireError) in
                try w.beginFrame(.txattrcreate, tag: tag)
                try w.u32(fid); try w.string(name); try w.u64(UInt64(value.count)); try w.u32(flags)
                w.finishFrame()
            } decode: { response throws(NinePError) in
                guard case .xattrcreate = response else { throw .protocolViolation(.xattrcreate) }
            }
            if !value.isEmpty { try await file.write(contentsOf: value, at: 0) }
        } catch {
            await file.close()
            throw error
        }
        // The value is set when the fid is clunked; a failure shows in Rclunk.
        let state = try await clunkReporting(file)
        if let state { throw state.at(path) }
    }

    private func readXattr(fid: UInt32, name: String, path: String) async throws -> [UInt8] {
        let newfid = connection.allocateFid()
        let size: UInt64
        do {
            size = try await call(.xattrwalk, path, undo: .walk(newfid: newfid, names: 0)) { (w: inout WireWriter, tag) throws(WireError) in
                try w.beginFrame(.txattrwalk, tag: tag)
                try w.u32(fid); try w.u32(newfid); try w.string(name)
                w.finishFrame()
            } decode: { response throws(NinePError) in
                guard case let .xattrwalk(size) = response else { throw .protocolViolation(.xattrwalk) }
                return size
            }
        } catch let error as NinePError where error.kind == .server {
            connection.releaseFid(newfid)
            throw error
        }
        let file = RemoteFile(client: self, fid: newfid, qid: rootQid, path: path)
        file.noteUnrecoverable()
        do {
            let value = try await file.read(at: 0, count: Int(min(size, 1 << 24)))
            await file.close()
            return value
        } catch {
            await file.close()
            throw error
        }
    }

    /// Clunks `file` and returns the server's error, if any (for xattr commits).
    private func clunkReporting(_ file: RemoteFile) async throws -> NinePError? {
        file.markClosed()
        return try await clunkAnswered(file.fid)
    }
}
