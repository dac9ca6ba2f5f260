import Glibc
import NinePWire

extension NinePClient {
    /// Walks from `fid` along `names` to a new fid (nil names: a clone). The new fid exists on
    /// return; on failure no fid is left behind.
    func walk(from fid: UInt32, _ names: [String], path: String) async throws -> (fid: UInt32, qid: Qid?) {
        // One connection for the fid number and the call: a reconnect in between must not
        // hand this number (from the old connection's allocator) to the new one.
        let connection = self.connection
        let newfid = connection.allocateFid()
        var qid: Qid? = nil
        var start = 0
        var from = fid
        repeat {
            let end = min(names.count, start + NineP.maxWalkElements)
            let chunk = names[start..<end]
            // The first step makes the fid (undone by the walk's outcome); later steps move it,
            // so a caller who stops waiting leaves a fid to clunk.
            let undo: Undo = start == 0 ? .walk(newfid: newfid, names: chunk.count) : .clunk(fid: newfid)
            let walked: Int
            do {
                (walked, qid) = try await connection.call(.walk, undo: undo, timeout: callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                    try w.twalk(tag: tag, fid: from, newfid: newfid, names: chunk)
                } decode: { response throws(NinePError) in
                    guard case let .walk(qids) = response else { throw .protocolViolation(.walk) }
                    return (qids.count, qids.last)
                }
            } catch let error as NinePError {
                // Answered with an error: the fid was not made (first step) or stayed (later).
                // Otherwise the slot's undo settles it when the server does.
                if error.kind == .server {
                    if start == 0 { connection.releaseFid(newfid) } else { connection.clunkLater(newfid) }
                } else if error.kind == .protocolViolation {
                    connection.clunkLater(newfid)
                }
                throw error.at(path)
            }
            if walked < chunk.count {
                // A partial walk: the first step made no fid; a later one left it where it was.
                if start == 0 { connection.releaseFid(newfid) } else { connection.clunkLater(newfid) }
                throw NinePError(.server, errno: ENOENT, operation: .walk, path: path)
            }
            start = end
            from = newfid
        } while start < names.count
        return (newfid, qid)
    }

    /// A handle for `path`, not opened (for stat, setattr, xattrs, or `open` later).
    public func walk(_ path: String) async throws -> RemoteFile {
        let (fid, qid) = try await walk(from: FidAllocator.root, PathComponents(path).names, path: path)
        return RemoteFile(client: self, fid: fid, qid: qid ?? rootQid, path: path)
    }

    /// Runs `body` with a fid for `path`, clunked afterwards.
    func withFid<T>(_ path: String, _ names: [String]? = nil, _ body: (UInt32) async throws -> T) async throws -> T {
        let (fid, _) = try await walk(from: FidAllocator.root, names ?? PathComponents(path).names, path: path)
        do {
            let result = try await body(fid)
            await clunk(fid)
            return result
        } catch {
            await clunk(fid)
            throw error
        }
    }

    /// Clunks `fid`, in the background when this task cannot wait (cancelled, or its
    /// `CallCanceller` is) or the call fails.
    func clunk(_ fid: UInt32) async {
        if Task.isCancelled || CallCanceller.current?.isCancelled == true {
            // This task can no longer wait on the server: a task of its own clunks, for at most
            // the flush grace (after which the housekeeper finishes the job).
            let grace = configuration.flushGrace
            // On the client's executor: Swift's global pool may be held by other work.
            await Task.detached(executorPreference: executor) { [self] in await NinePClient.withCallTimeout(grace) { await clunkNow(fid) } }.value
            return
        }
        await clunkNow(fid)
    }

    private func clunkNow(_ fid: UInt32) async {
        // Not answered (cancelled, timed out or disconnected): the slot's undo clunks again if needed.
        _ = try? await clunkAnswered(fid)
    }

    /// Sends Tclunk. Once answered the fid is gone whatever the answer: it is released and the
    /// server's error (or a malformed answer), if any, is returned. Throws when not answered.
    func clunkAnswered(_ fid: UInt32) async throws -> NinePError? {
        do {
            try await connection.call(.clunk, undo: .releaseFid(fid), timeout: callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.clunk(fid: fid).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case .clunk = response else { throw .protocolViolation(.clunk) }
            }
            connection.releaseFid(fid)
            return nil
        } catch let error as NinePError where error.kind == .server || error.kind == .protocolViolation {
            connection.releaseFid(fid)
            return error
        }
    }
}
