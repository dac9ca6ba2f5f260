import Glibc

/// The client side of scripts/bench-allocs: one connection, a file bench.dat opened O_RDWR as
/// the target of read/write/getattr, and batches of one message type sent on command, at most
/// `depth` in flight, every reply the success reply. The script reads the malloc counters
/// between commands, so each answer means "every reply of the batch is in". Commands:
///   walk FIRST N     Twalk(root -> FIRST+i, ["bench.dat"])
///   clunk FIRST N    Tclunk(FIRST+i)
///   lopen FIRST N    Tlopen(FIRST+i, O_RDONLY)
///   read SIZE N      Tread(bench.dat, 0, SIZE)
///   write SIZE N     Twrite(bench.dat, 0, SIZE random bytes)
///   getattr N        Tgetattr(bench.dat, basic mask)
///   flush OLDTAG N   Tflush(OLDTAG)
/// Each answers {"ok": true} or {"error": "..."}. End of input closes the connection.
final class AllocationSession {
    static let rootFid: UInt32 = 1, fileFid: UInt32 = 2

    let session: RawSession
    let depth: Int
    /// Random bytes the writes send (the largest write's worth).
    let data: [UInt8]

    init(endpoint: Endpoint, export: String, msize: UInt32, depth: Int, large: Int) throws {
        self.depth = max(1, depth)
        data = randomBytes(max(4096, large))
        session = try RawSession.connect(endpoint, msize: msize, timeout: 30)
        try session.attach(fid: Self.rootFid, aname: export, nuname: getuid())
        try session.walk(fid: Self.rootFid, newfid: Self.fileFid)
        try session.lcreate(fid: Self.fileFid, name: "bench.dat", flags: OpenFlags.readWrite | OpenFlags.create | OpenFlags.truncate)
        let written = try session.write(fid: Self.fileFid, offset: 0, data: data)
        guard written == data.count else { throw LoadError.protocolError("short write of bench.dat: \(written) of \(data.count)") }
    }

    func serve() {
        JSON.object([("ready", .bool(true)), ("msize", .int(Int(session.msize)))]).emit()
        while let words = Control.nextCommand() {
            do {
                try run(words)
                JSON.object([("ok", .bool(true))]).emit()
            } catch {
                JSON.object([("error", .string("\(error)"))]).emit()
            }
        }
        session.close()
    }

    private func run(_ words: [String]) throws {
        // "getattr N" has no argument: read it as "getattr 0 N".
        let numbers = words.dropFirst().compactMap { Int($0) }
        guard (words.count == 3 || words == ["getattr", words.last!]) && numbers.count == words.count - 1,
              numbers.allSatisfy({ $0 >= 0 }) else {
            throw LoadError.protocolError("usage: KIND ARGUMENT COUNT (getattr COUNT), got \(words.joined(separator: " "))")
        }
        let first = numbers.count == 2 ? numbers[0] : 0
        let count = numbers[numbers.count - 1]
        let fid = { (i: Int) in UInt32(first + i) }
        switch words[0] {
        case "walk": try sendAll(count) { .walk(fid: Self.rootFid, newfid: fid($0), names: ["bench.dat"]) }
        case "clunk": try sendAll(count) { .clunk(fid: fid($0)) }
        case "lopen": try sendAll(count) { .lopen(fid: fid($0), flags: OpenFlags.readOnly) }
        case "read": try sendAll(count) { _ in .read(fid: Self.fileFid, offset: 0, count: UInt32(first)) }
        case "write":
            guard first <= data.count else { throw LoadError.protocolError("write of \(first) bytes: at most \(data.count)") }
            try data.withUnsafeBytes { bytes in
                let payload = UnsafeRawBufferPointer(rebasing: bytes[0..<first])
                try sendAll(count) { _ in .write(fid: Self.fileFid, offset: 0, data: payload) }
            }
        case "getattr": try sendAll(count) { _ in .getattr(fid: Self.fileFid, mask: getattrBasic) }
        case "flush":
            guard first <= 0xFFFF else { throw LoadError.protocolError("tag \(first) above 0xFFFF") }
            try sendAll(count) { _ in .flush(oldtag: UInt16(first)) }
        default: throw LoadError.protocolError("unknown command \(words[0])")
        }
    }

    /// Sends request(0..<count) with at most `depth` in flight; every reply must be the success reply.
    private func sendAll(_ count: Int, _ request: (Int) -> TRequest) throws {
        var pending: [UInt16] = []
        pending.reserveCapacity(depth)
        for i in 0..<count {
            pending.append(try session.send(request(i)))
            if pending.count >= depth { try session.wait(pending.removeFirst()).expectSuccess() }
        }
        for tag in pending { try session.wait(tag).expectSuccess() }
    }
}
