import Glibc
import NinePWire

/// The client side of scripts/malloc-failure, driven by the script over stdin (it switches the
/// malloc shim between the steps, so it decides when each step runs). One JSON line answers
/// each command:
///   start                  run the loops (warm-up first); answers once every loop is warm
///   failing on|off         iterations from now on count (or not) as done while failing
///   status                 the loops' counters
///   probe-connections N    new connections kept open until one is refused (at most N)
///   probe-fids N           new fids (Twalk of the root, no names) until one is refused
///   check-fids             the granted fids answer Tgetattr and clunk
///   stop                   stop the loops (joined within 30 s)
///   iterate clean|all      one iteration per loop (clean: only loops without errors, going on
///                          after a failure; all: every loop, stopping at the first failure)
/// End of input closes every connection.
final class MallocFailureSession {
    let endpoint: Endpoint
    let export: String
    let msize: UInt32
    let warmup: Int
    var loops: [SteadyLoop] = []
    var threads: [BackgroundThread] = []
    let fidSession: RawSession
    var probeSessions: [RawSession] = []
    var fidsServed = 0

    static let firstProbeFid: UInt32 = 100

    init(endpoint: Endpoint, export: String, msize: UInt32, connections: Int, warmup: Int) throws {
        self.endpoint = endpoint
        self.export = export
        self.msize = msize
        self.warmup = warmup
        for index in 0..<connections {
            loops.append(try SteadyLoop(index: index, endpoint: endpoint, export: export, msize: msize))
        }
        fidSession = try RawSession.connect(endpoint, msize: msize, timeout: 10)
        try fidSession.attach(fid: 1, aname: export, nuname: getuid())
    }

    func serve() {
        JSON.object([("ready", .bool(true)), ("connections", .int(loops.count))]).emit()
        while let words = Control.nextCommand() {
            answer(words).emit()
        }
        for loop in loops { loop.stopRequested.store(true, ordering: .releasing) }
        for thread in threads { _ = thread.join(seconds: 30) }
        for loop in loops { loop.close() }
        for session in probeSessions { session.close() }
        fidSession.close()
    }

    private func answer(_ words: [String]) -> JSON {
        let count = words.count > 1 ? Int(words[1]) ?? 0 : 0
        switch words[0] {
        case "start": return start()
        case "failing":
            for loop in loops { loop.failing.store(words.count > 1 && words[1] == "on", ordering: .releasing) }
            return .object([("ok", .bool(true))])
        case "status": return status()
        case "probe-connections": return probeConnections(attempts: count)
        case "probe-fids": return probeFids(attempts: count)
        case "check-fids": return checkFids()
        case "stop":
            for loop in loops { loop.stopRequested.store(true, ordering: .releasing) }
            let joined = threads.allSatisfy { $0.join(seconds: 30) }
            return .object([("joined", .bool(joined)), ("loops", .array(loops.map(\.status)))])
        case "iterate": return iterate(onlyClean: words.count > 1 && words[1] == "clean")
        default: return .object([("error", .string("unknown command \(words.joined(separator: " "))"))])
        }
    }

    private func start() -> JSON {
        guard threads.isEmpty else { return .object([("error", .string("the loops have started already"))]) }
        for loop in loops {
            let warmup = self.warmup
            threads.append(BackgroundThread(name: "steady-\(loop.index)") { loop.run(warmup: warmup) })
        }
        let deadline = monotonicSeconds() + 120
        while !loops.allSatisfy({ $0.warm.load(ordering: .acquiring) }) && monotonicSeconds() < deadline {
            sleepSeconds(0.01)
        }
        return status()
    }

    private func status() -> JSON {
        .object([("loops", .array(loops.map(\.status)))])
    }

    /// One iteration per loop, from this thread (the loops must have stopped).
    private func iterate(onlyClean: Bool) -> JSON {
        var failures: [String] = []
        for loop in loops {
            if onlyClean && !loop.counters.withLock({ $0.errors.isEmpty }) { continue }
            do {
                try loop.iteration()
            } catch {
                failures.append("\(error)")
                if !onlyClean { break }
            }
        }
        return .object([("failures", JSON.strings(failures)), ("loops", .array(loops.map(\.status)))])
    }

    /// New connections (Tversion, Tattach, Tgetattr), kept open, until one is refused.
    private func probeConnections(attempts: Int) -> JSON {
        var outcomes: [JSON] = []
        func outcome(_ kind: String, _ text: String, errno code: UInt32? = nil) -> JSON {
            .object([("kind", .string(kind)), ("text", .string(text)), ("errno", code.map { .int(Int($0)) } ?? .null)])
        }
        for _ in 0..<max(0, attempts) {
            let session: RawSession
            do {
                session = try RawSession.connect(endpoint, msize: msize, timeout: 10)
            } catch let LoadError.rlerror(code, _) {
                outcomes.append(outcome("rlerror", "Rlerror \(errnoName(code)) to Tversion", errno: code))
                break
            } catch let LoadError.connectionLost(text) {
                outcomes.append(outcome("lost", "refused/closed at connect or Tversion: \(text)"))
                break
            } catch {
                outcomes.append(outcome("protocol", "protocol error at Tversion: \(error)"))
                break
            }
            do {
                try session.attach(fid: 1, aname: export, nuname: getuid())
                _ = try session.getattrSize(fid: 1)
                probeSessions.append(session)
                outcomes.append(outcome("served", "served"))
            } catch let LoadError.rlerror(code, request) {
                outcomes.append(outcome("rlerror", "Rlerror \(errnoName(code)) to \(request?.displayName ?? "?")", errno: code))
                session.close()
                break
            } catch let LoadError.connectionLost(text) {
                outcomes.append(outcome("lost", "closed after Tversion: \(text)"))
                session.close()
                break
            } catch {
                outcomes.append(outcome("protocol", "protocol error: \(error)"))
                session.close()
                break
            }
        }
        return .object([("outcomes", .array(outcomes))])
    }

    /// New fids on the connection made before the failures, until one is refused.
    private func probeFids(attempts: Int) -> JSON {
        var outcome = "none refused"
        var code: UInt32? = nil
        fidsServed = 0
        for n in 0..<max(0, attempts) {
            do {
                _ = try fidSession.rpc(.walk(fid: 1, newfid: Self.firstProbeFid + UInt32(n), names: []))
                fidsServed += 1
            } catch let LoadError.rlerror(errno, _) {
                outcome = "Rlerror \(errnoName(errno)) after \(fidsServed) new fids"
                code = errno
                break
            } catch {
                outcome = "\(error) after \(fidsServed) new fids"
                break
            }
        }
        return .object([("served", .int(fidsServed)), ("outcome", .string(outcome)), ("errno", code.map { .int(Int($0)) } ?? .null)])
    }

    /// The fids that were granted still work, and clunk frees them.
    private func checkFids() -> JSON {
        do {
            try fidSession.pipeline([.getattr(fid: Self.firstProbeFid, mask: getattrBasic)])[0].expectSuccess()
            let clunks = (0..<UInt32(fidsServed)).map { TRequest.clunk(fid: Self.firstProbeFid + $0) }
            for reply in try fidSession.pipeline(clunks) { try reply.expectSuccess() }
            return .object([("ok", .bool(true)), ("detail", .string("\(fidsServed) fids clunked"))])
        } catch {
            return .object([("ok", .bool(false)), ("detail", .string("\(error)"))])
        }
    }
}
