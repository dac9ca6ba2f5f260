import Glibc
import NinePMemory
import NinePWire

/// Brings a client back after its connection is lost (`ClientConfiguration.reconnect`).
///
/// It keeps every live `RemoteFile` (weakly, by fid). When the connection ends, calls in flight
/// have already failed with a lost connection and later calls fail at once on the closed one;
/// a background task then dials again with backoff, negotiates the version (same msize bound),
/// attaches fid 0 and every per-user attach again (same fid numbers, unames and uids), walks
/// every live fid again from its attach by its path, to its own number, and reopens the open
/// ones. A fid whose walk fails or ends at another file (qid path or type differ: the file
/// was replaced while the server was away) is marked broken and left unwalked: never bound to
/// another file. Fids that held a POSIX lock (the server dropped it) and attribute fids are
/// broken too. Only then does the new connection replace the old, so no call sees it half
/// restored.
///
/// Paths are those the fids were reached by: after a rename the path may be stale, and the
/// qid check then catches it (the fid is broken rather than wrong).
final class Reconnector: Sendable {
    private struct WeakFile {
        weak var file: RemoteFile?
    }

    private struct State {
        var files: [UInt32: WeakFile] = [:]
        var running = false
        var stopped = false
    }

    let policy: ReconnectPolicy
    private let state = AdaptiveMutex(State())

    init(policy: ReconnectPolicy) { self.policy = policy }

    // MARK: Live fids

    func register(_ file: RemoteFile) {
        state.withLock { $0.files[file.fid] = WeakFile(file: file) }
    }

    /// Forgets `file` (closed, or going away: then its weak reference already reads nil).
    func unregister(_ fid: UInt32, _ file: RemoteFile) {
        state.withLock { state in
            guard let entry = state.files[fid] else { return }
            let held = entry.file
            if held == nil || held === file { state.files[fid] = nil }
        }
    }

    /// The client is closing: no more reconnects.
    func stop() { state.withLock { $0.stopped = true } }

    // MARK: Losing and reconnecting

    /// Reconnect when `connection`, the client's current one, is lost.
    func watch(_ connection: ClientConnection, of client: NinePClient) {
        connection.lostHandler.withLock { handler in
            handler = { [weak self, weak client] in
                guard let self, let client else { return }
                self.lost(client)
            }
        }
        // Lost before the handler was in place: nothing called it.
        if connection.isClosed { lost(client) }
    }

    private func lost(_ client: NinePClient) {
        let start = state.withLock { state -> Bool in
            guard !state.stopped, !state.running else { return false }
            state.running = true
            return true
        }
        guard start else { return }
        policy.onEvent?(.lost)
        // Weakly: a client dropped without close() during an outage goes away (its deinit
        // stops this loop) rather than being kept alive by it.
        let reference = WeakClient(client)
        // On the client's own executor thread, not Swift's global pool: that pool has one
        // thread per core, and whatever else the process blocks on it (synchronous waits in
        // a test process, say) must not be able to keep a mount from coming back.
        Task.detached(executorPreference: client.executor) { [self] in await self.retry(reference) }
    }

    private final class WeakClient: Sendable {
        weak let client: NinePClient?
        init(_ client: NinePClient) { self.client = client }
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func retry(_ reference: WeakClient) async {
        var delay = policy.firstDelay
        var lastFailure: Int32 = 0
        while true {
            try? await Task.sleep(for: delay)
            guard !stopped, let client = reference.client else {
                state.withLock { $0.running = false }
                return
            }
            do {
                let (rewalked, broken) = try await reconnect(client)
                state.withLock { $0.running = false }
                policy.onEvent?(.reconnected(rewalked: rewalked, broken: broken))
                // Lost again while this task was finishing: its handler found us running.
                if client.connection.isClosed { lost(client) }
                return
            } catch let error as NinePError {
                if error.errno != lastFailure {
                    lastFailure = error.errno
                    policy.onEvent?(.attemptFailed(error))
                }
            } catch {
                // Only NinePError is thrown; a cancellation cannot come (detached, never cancelled).
            }
            delay = min(delay * 2, policy.maxDelay)
        }
    }

    /// One attempt: a new connection with every fid restored, put in place. Throws (and the
    /// new connection is closed) when the server cannot be reached or goes away meanwhile.
    private func reconnect(_ client: NinePClient) async throws -> (rewalked: Int, broken: Int) {
        let configuration = client.configuration
        let fresh = try await CancellableOpen.open(configuration, connectedSocket: nil)
        do {
            let outcome = try await restore(client, on: fresh)
            // Broken fids are marked before anyone can call on the new connection.
            for (file, code) in outcome.broken { file.state.withLock { $0.recovery.broken = code } }
            for (file, iounit) in outcome.reopened { file.setIOUnit(iounit) }
            // localio grants came from the old server: a restarted one may have another policy,
            // so files open across the outage move their data by 9P from now on.
            for (file, _) in outcome.reopened { file.dropLocalGrant() }
            for (file, _) in outcome.broken { file.dropLocalGrant() }
            client.connectionBox.withLock { $0 = fresh }
            watch(fresh, of: client)
            return (outcome.rewalked, outcome.broken.count)
        } catch {
            fresh.shutdown()
            throw error
        }
    }

    private struct Outcome {
        var rewalked = 0
        var broken: [(RemoteFile, Int32)] = []
        var reopened: [(RemoteFile, UInt32)] = []
    }

    private func restore(_ client: NinePClient, on fresh: ClientConnection) async throws -> Outcome {
        let configuration = client.configuration
        let limit = configuration.callTimeout ?? .seconds(30)
        // Fid numbers go on as they were: the old connection is closed, so this copy has every
        // number a live file holds (numbers taken from it from now on only fail there).
        let fids = client.connection.state.withLock { $0.fids }
        fresh.state.withLock { $0.fids = fids }

        let uid = configuration.uid ?? ClientConfiguration.numericUser(for: configuration.uname)
        var roots: [UInt32: Qid] = [:]
        roots[FidAllocator.root] = try await fresh.attach(fid: FidAllocator.root, uname: configuration.uname, aname: configuration.aname, uid: uid, timeout: limit)

        let files = state.withLock { state in state.files.values.compactMap { $0.file } }
        var outcome = Outcome()
        // Per-user attaches first: the files walked from them need them.
        for file in files {
            guard let identity = file.attachedAs, file.state.withLock({ !$0.closed && $0.recovery.broken == 0 }) else { continue }
            do {
                let qid = try await fresh.attach(fid: file.fid, uname: identity.uname, aname: configuration.aname, uid: identity.uid, timeout: limit)
                roots[file.fid] = qid
                if qid.type == file.qid.type && qid.path == file.qid.path {
                    outcome.rewalked += 1
                } else {
                    outcome.broken.append((file, ESTALE))
                }
            } catch let error as NinePError where error.kind == .server {
                outcome.broken.append((file, ESTALE))
            }
        }
        for file in files where file.attachedAs == nil {
            let (recovery, closed) = file.state.withLock { ($0.recovery, $0.closed) }
            guard !closed, recovery.broken == 0 else { continue }
            let failure: Int32 = recovery.openFlags == nil ? ESTALE : EIO
            guard !recovery.unrecoverable, !recovery.heldLock, let rootQid = roots[file.root] else {
                outcome.broken.append((file, failure))
                continue
            }
            let target = recovery.createdPath ?? file.path
            let expected = recovery.createdQid ?? file.qid
            guard let qid = try await walk(fresh, from: file.root, to: file.fid, PathComponents(target).names, rootQid: rootQid, limit) else {
                outcome.broken.append((file, failure))
                continue
            }
            guard qid.type == expected.type && qid.path == expected.path else {
                try await forget(fresh, file.fid, limit)
                outcome.broken.append((file, failure))
                continue
            }
            if let flags = recovery.openFlags {
                // Reopen as it was, but never truncate or create again.
                let again = flags & ~UInt32(O_TRUNC | O_CREAT | O_EXCL)
                do {
                    let iounit = try await fresh.call(.open, timeout: limit) { (w: inout WireWriter, tag) throws(WireError) in
                        try Request.lopen(fid: file.fid, flags: again).encode(tag: tag, into: &w)
                    } decode: { response throws(NinePError) in
                        guard case let .lopen(_, iounit) = response else { throw .protocolViolation(.open) }
                        return iounit
                    }
                    outcome.reopened.append((file, iounit))
                } catch let error as NinePError where error.kind == .server {
                    try await forget(fresh, file.fid, limit)
                    outcome.broken.append((file, EIO))
                    continue
                }
            }
            outcome.rewalked += 1
        }
        return outcome
    }

    /// Walks `root` along `names` to `fid` (in steps of at most 16 names): the qid reached, or
    /// nil when the server refused or the walk stopped short (the fid then does not exist).
    private func walk(_ connection: ClientConnection, from root: UInt32, to fid: UInt32, _ names: [String], rootQid: Qid, _ limit: Duration) async throws -> Qid? {
        var start = 0
        var from = root
        var reached = rootQid
        repeat {
            let end = min(names.count, start + NineP.maxWalkElements)
            let chunk = names[start..<end]
            let qids: (count: Int, last: Qid?)
            do {
                qids = try await connection.call(.walk, timeout: limit) { (w: inout WireWriter, tag) throws(WireError) in
                    _ = try w.twalk(tag: tag, fid: from, newfid: fid, names: chunk)
                } decode: { response throws(NinePError) in
                    guard case let .walk(qids) = response else { throw .protocolViolation(.walk) }
                    return (qids.count, qids.endIndex > 0 ? qids[qids.endIndex - 1] : nil)
                }
            } catch let error as NinePError where error.kind == .server {
                if start > 0 { try await forget(connection, fid, limit) }
                return nil
            }
            if qids.count < chunk.count {
                if start > 0 { try await forget(connection, fid, limit) }
                return nil
            }
            if let last = qids.last { reached = last }
            start = end
            from = fid
        } while start < names.count
        return reached
    }

    /// Tclunk of a fid this attempt made but cannot keep. The number stays the file's (its own
    /// close clunks again, gets an error, and gives the number back then).
    private func forget(_ connection: ClientConnection, _ fid: UInt32, _ limit: Duration) async throws {
        do {
            try await connection.call(.clunk, timeout: limit) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.clunk(fid: fid).encode(tag: tag, into: &w)
            } decode: { _ throws(NinePError) in }
        } catch let error as NinePError where error.kind == .server {}
    }
}
