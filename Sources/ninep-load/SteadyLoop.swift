import Glibc
import Synchronization

/// malloc-failure's steady loop on one connection and its own file: Twalk, Tlopen(O_RDWR),
/// then for 4 KiB and 64 KiB a Twrite of the iteration's pattern and a Tread back compared by
/// CRC-32 and byte by byte, Tgetattr (size), Tclunk. Runs on a thread of its own until stopped;
/// the controlling thread reads its counters and, once it has stopped, runs single iterations.
final class SteadyLoop: Sendable {
    struct Counters {
        var iterations = 0
        var iterationsFailing = 0
        var errors: [String] = []
        var corruptedBytes = 0
    }

    static let rootFid: UInt32 = 1, fileFid: UInt32 = 10

    let index: Int
    let fileName: String
    /// Held by whichever thread runs an iteration: the loop's own, or the controller's once
    /// the loop has stopped.
    private let session: Mutex<RawSession>
    private let sizes: [Int]
    let counters = Mutex(Counters())
    /// Set while the shim fails allocations: iterations then also count as "failing" ones.
    let failing = Atomic<Bool>(false)
    let stopRequested = Atomic<Bool>(false)
    let warm = Atomic<Bool>(false)

    /// Connects, attaches and creates the loop's file (truncated).
    init(index: Int, endpoint: Endpoint, export: String, msize: UInt32) throws {
        self.index = index
        fileName = "steady-\(index).dat"
        let connection = try RawSession.connect(endpoint, msize: msize, timeout: 20)
        try connection.attach(fid: Self.rootFid, aname: export, nuname: getuid())
        try connection.walk(fid: Self.rootFid, newfid: 2)
        try connection.lcreate(fid: 2, name: fileName, flags: OpenFlags.readWrite | OpenFlags.create | OpenFlags.truncate)
        try connection.clunk(fid: 2)
        sizes = [4096, min(65536, (Int(connection.msize) - 24) / 4096 * 4096)]
        session = Mutex(connection)
    }

    /// The bytes iteration `iteration` of connection `connection` writes (as the Python
    /// script's pattern(): a 4-byte seed repeated, the first bytes "c<connection> i<iteration> ").
    static func pattern(connection: Int, iteration: Int, size: Int) -> [UInt8] {
        let seed = UInt32(truncatingIfNeeded: connection &* 1_000_003 &+ iteration &* 7919)
        var data = Bytes.repeated(seed, count: size)
        let head = Array("c\(connection) i\(iteration) ".utf8)
        for (i, byte) in head.prefix(size).enumerated() { data[i] = byte }
        return data
    }

    /// One iteration; throws on the first request that fails or data that differs.
    func iteration() throws {
        try session.withLock { connection in
            let iteration = counters.withLock { $0.iterations }
            let fid = Self.fileFid
            try connection.walk(fid: Self.rootFid, newfid: fid, names: [fileName])
            try connection.lopen(fid: fid, flags: OpenFlags.readWrite)
            var offset = 0
            for size in sizes {
                let data = Self.pattern(connection: index, iteration: iteration, size: size)
                let written = try connection.write(fid: fid, offset: UInt64(offset), data: data)
                if written != size { throw LoadError.protocolError("short write: \(written) of \(size)") }
                let back = try connection.read(fid: fid, offset: UInt64(offset), count: UInt32(size))
                // Byte for byte (memcmp); the CRC-32s, which equal bytes always share, are only
                // worked out for the report when the bytes differ.
                if !Bytes.equal(back, data) {
                    let bad = Bytes.differing(back, data)
                    counters.withLock { $0.corruptedBytes += bad }
                    throw LoadError.protocolError("read back \(back.count) bytes at \(offset): \(bad) differ from what was written "
                        + "(CRC-32 \(hex(CRC32.checksum(back))), written \(hex(CRC32.checksum(data))))")
                }
                offset += size
            }
            let size = try connection.getattrSize(fid: fid)
            if size != UInt64(offset) { throw LoadError.protocolError("getattr size \(size), expected \(offset)") }
            try connection.clunk(fid: fid)
        }
        let failingNow = failing.load(ordering: .acquiring)
        counters.withLock {
            $0.iterations += 1
            if failingNow { $0.iterationsFailing += 1 }
        }
    }

    /// The thread's body: `warmup` iterations, then on until stopped or an error.
    func run(warmup: Int) {
        do {
            for _ in 0..<warmup { try iteration() }
            warm.store(true, ordering: .releasing)
            while !stopRequested.load(ordering: .acquiring) { try iteration() }
        } catch {
            let prefix = failing.load(ordering: .acquiring) ? "while failing allocations: " : ""
            counters.withLock { $0.errors.append(prefix + "\(error)") }
        }
        warm.store(true, ordering: .releasing)
    }

    func close() {
        session.withLock { $0.close() }
    }

    var status: JSON {
        let c = counters.withLock { $0 }
        return .object([
            ("iterations", .int(c.iterations)), ("iterations_failing", .int(c.iterationsFailing)),
            ("errors", JSON.strings(c.errors)), ("corrupted_bytes", .int(c.corruptedBytes)),
        ])
    }
}

private func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
