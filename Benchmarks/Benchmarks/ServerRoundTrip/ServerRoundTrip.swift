import Benchmark
import Glibc
import Logging
@_spi(Benchmarks) import NinePServer
import NinePTransport
import NinePWire

// One request's whole round trip through a NinePServer `Server` running in this process,
// over a unix socket: the client writes a frame encoded before the run and reads the reply
// into a buffer allocated before the run, so the malloc count of an iteration is the
// server's (reader thread, admission, worker, reply). The promise is 0.

/// A function, not a global: Benchmark.Configuration is not Sendable.
func benchmarkConfiguration() -> Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        tags: ["batch": "1"],
        timeUnits: .nanoseconds,
        warmupIterations: 200,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 50_000
    )
}

enum FixtureError: Error, CustomStringConvertible {
    case setup(String)
    var description: String {
        switch self {
        case let .setup(what): what
        }
    }
}

/// A server exporting a fresh temporary directory that holds `data` (1 MiB), and a blocking
/// unix-socket client that has attached, walked to `data` as fid 1 and opened it read-write.
final class Fixture {
    static let fileSize = 1 << 20
    static let msize: UInt32 = 256 * 1024
    let directory: String
    let server: Server
    let fd: Int32
    /// Frames are encoded here before the run.
    let send = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(Fixture.msize), alignment: 4096)
    /// Every reply lands here.
    let receive = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(Fixture.msize), alignment: 4096)

    /// `requestMetrics`: the server counts every request (ServerConfiguration.requestMetrics),
    /// as ninepd does with --metrics-listen; nothing publishes during the run.
    init(requestMetrics: Bool = false) throws {
        var template = Array("/tmp/ninep-bench-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw FixtureError.setup("mkdtemp: errno \(errno)")
        }
        directory = String(cString: made)
        let export = "\(directory)/export"
        let socketPath = "\(directory)/socket"
        guard mkdir(export, 0o755) == 0 else { throw FixtureError.setup("mkdir \(export): errno \(errno)") }
        let file = open("\(export)/data", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard file >= 0, ftruncate(file, off_t(Fixture.fileSize)) == 0 else {
            throw FixtureError.setup("cannot create the data file: errno \(errno)")
        }
        close(file)

        var configuration = ServerConfiguration(exportPath: export, listen: [.unix(path: socketPath)])
        configuration.maxMessageSize = Fixture.msize
        configuration.workerThreads = 2
        configuration.maxConnections = 4
        configuration.largeBuffers = 4
        configuration.requestMetrics = requestMetrics
        var logger = Logger(label: "ninep-benchmark")
        logger.logLevel = .critical
        server = try Server(configuration: configuration, logger: logger)
        server.start()

        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FixtureError.setup("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in socketPath.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw FixtureError.setup("connect \(socketPath): errno \(errno)") }

        try call(expecting: .rversion) { w throws(WireError) in
            try Request.version(msize: Fixture.msize, version: ByteView(static: "9P2000.L")).encode(tag: NineP.noTag, into: &w)
        }
        try call(expecting: .rattach) { w throws(WireError) in
            try Request.attach(fid: 0, afid: NineP.noFid, uname: ByteView(static: ""), aname: ByteView(static: ""), nuname: getuid())
                .encode(tag: 1, into: &w)
        }
        let names: [StaticString] = ["data"]
        try call(expecting: .rwalk) { w throws(WireError) in try w.twalk(tag: 1, fid: 0, newfid: 1, names: names) }
        try call(expecting: .rlopen) { w throws(WireError) in try Request.lopen(fid: 1, flags: UInt32(O_RDWR)).encode(tag: 1, into: &w) }
    }

    /// Encodes a frame into `send`, sends it, and checks the reply's type (set-up only).
    func call(expecting type: MessageType, _ encode: (inout WireWriter) throws(WireError) -> Int) throws {
        var writer = WireWriter(send)
        let length = try encode(&writer)
        guard let reply = roundTrip(UnsafeRawBufferPointer(rebasing: send[0..<length])) else {
            throw FixtureError.setup("no reply to \(type)")
        }
        guard reply.type == type.rawValue else {
            throw FixtureError.setup("expected \(type), got message type \(reply.type)")
        }
    }

    /// A frame encoded once, in memory of its own, for the measured loop.
    func frame(_ encode: (inout WireWriter) throws(WireError) -> Int) throws -> UnsafeRawBufferPointer {
        var writer = WireWriter(send)
        let length = try encode(&writer)
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 4096)
        copy.copyMemory(from: UnsafeRawBufferPointer(rebasing: send[0..<length]))
        return UnsafeRawBufferPointer(copy)
    }

    /// Sends `frame` and reads one whole reply into `receive`; its header, or nil when the
    /// connection closed or the reply is malformed. Allocates nothing.
    @inline(__always)
    func roundTrip(_ frame: UnsafeRawBufferPointer) -> FrameHeader? {
        guard SocketIO.writeFully(fd, frame) == .complete else { return nil }
        let head = UnsafeMutableRawBufferPointer(rebasing: receive[0..<NineP.headerSize])
        guard SocketIO.readFully(fd, into: head) == .complete,
              let header = try? FrameHeader.decode(UnsafeRawBufferPointer(head), msize: Fixture.msize)
        else { return nil }
        let body = UnsafeMutableRawBufferPointer(rebasing: receive[NineP.headerSize..<Int(header.size)])
        guard SocketIO.readFully(fd, into: body) == .complete else { return nil }
        return header
    }

    /// The last reply's count field (Rread, Rwrite), for checking.
    var replyCount: UInt32 {
        UInt32(littleEndian: receive.loadUnaligned(fromByteOffset: NineP.headerSize, as: UInt32.self))
    }

    func stop() {
        close(fd)
        server.shutdown()
        for path in ["\(directory)/export/data", "\(directory)/socket"] { unlink(path) }
        rmdir("\(directory)/export")
        rmdir(directory)
    }
}

/// Holds the fixture of the benchmark running now (set up and torn down around it).
final class FixtureHolder {
    var fixture: Fixture?
    var steps: [(frame: UnsafeRawBufferPointer, expected: MessageType, count: UInt32?)] = []
}

/// One request of an iteration: how to encode it (once, before the run), the reply type it
/// must get, and the count that reply must carry (Rread, Rwrite) when given.
struct Step {
    var expected: MessageType
    var count: UInt32? = nil
    var encode: (inout WireWriter) throws(WireError) -> Int
}

/// A benchmark whose every iteration sends each step's request in turn and checks its reply.
func roundTripBenchmark(_ name: String, requestMetrics: Bool = false, _ steps: [Step]) {
    let holder = FixtureHolder()
    Benchmark(
        name, configuration: benchmarkConfiguration(),
        closure: { benchmark in
            guard let fixture = holder.fixture else { return benchmark.error("\(name): no server") }
            for _ in benchmark.scaledIterations {
                for step in holder.steps {
                    guard let header = fixture.roundTrip(step.frame), header.type == step.expected.rawValue,
                          step.count == nil || fixture.replyCount == step.count
                    else { return benchmark.error("\(name): unexpected reply") }
                }
            }
        },
        setup: {
            let fixture = try Fixture(requestMetrics: requestMetrics)
            holder.steps = try steps.map { step in (try fixture.frame(step.encode), step.expected, step.count) }
            holder.fixture = fixture
        },
        teardown: {
            holder.fixture?.stop()
            holder.fixture = nil
        }
    )
}

let benchmarks: @Sendable () -> Void = {
    // Tgetattr as the kernel client sends it for a stat (P9_GETATTR_BASIC).
    roundTripBenchmark("Tgetattr round trip", [
        Step(expected: .rgetattr) { w throws(WireError) in try Request.getattr(fid: 1, mask: 0x7FF).encode(tag: 2, into: &w) },
    ])
    roundTripBenchmark("Tread 4 KiB round trip", [
        Step(expected: .rread, count: 4096) { w throws(WireError) in
            try Request.read(fid: 1, offset: 8192, count: 4096).encode(tag: 3, into: &w)
        },
    ])
    // What request metrics add to every request, alone: two clock reads and the atomic adds
    // of `ServerConnection.record` (an Rread's count parsed from its reply), on one thread.
    let counted = RequestStatistics()
    let rread: UnsafeMutableRawBufferPointer = {
        let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 11, alignment: 8)
        frame.initializeMemory(as: UInt8.self, repeating: 0)
        frame[4] = MessageType.rread.rawValue
        frame.storeBytes(of: UInt32(4096).littleEndian, toByteOffset: 7, as: UInt32.self)
        return frame
    }()
    Benchmark(
        "request counting alone (2 clock reads + counters)",
        configuration: .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal], tags: ["batch": "1000"], timeUnits: .nanoseconds,
            warmupIterations: 10, scalingFactor: .kilo, maxDuration: .seconds(2), maxIterations: 2000)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            let admitted = monotonicNanoseconds()
            counted.recordRequest(type: MessageType.tread.rawValue, nanoseconds: monotonicNanoseconds() &- admitted, reply: UnsafeRawBufferPointer(rread))
        }
        blackHole(counted.totalRequests)
    }
    // The same two with request metrics counted (ninepd --metrics-listen): the cost of the
    // counting on the request path, and that it allocates nothing either.
    roundTripBenchmark("Tgetattr round trip, request metrics on", requestMetrics: true, [
        Step(expected: .rgetattr) { w throws(WireError) in try Request.getattr(fid: 1, mask: 0x7FF).encode(tag: 2, into: &w) },
    ])
    roundTripBenchmark("Tread 4 KiB round trip, request metrics on", requestMetrics: true, [
        Step(expected: .rread, count: 4096) { w throws(WireError) in
            try Request.read(fid: 1, offset: 8192, count: 4096).encode(tag: 3, into: &w)
        },
    ])
    roundTripBenchmark("Twrite 4 KiB round trip", [
        Step(expected: .rwrite, count: 4096) { w throws(WireError) in
            // 4096 bytes of a repeating pattern, written into the frame once before the run.
            try w.beginFrame(.twrite, tag: 4)
            try w.u32(1); try w.u64(0); try w.u32(4096)
            let data = try w.reserve(4096)
            for i in 0..<4096 { data[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
            return w.finishFrame()
        },
    ])
    let names: [StaticString] = ["data"]
    roundTripBenchmark("Twalk + Tclunk (2 round trips)", [
        Step(expected: .rwalk) { w throws(WireError) in try w.twalk(tag: 5, fid: 0, newfid: 2, names: names) },
        Step(expected: .rclunk) { w throws(WireError) in try Request.clunk(fid: 2).encode(tag: 6, into: &w) },
    ])
    // A control: Tattach looks the user up (getpwuid_r and its groups), which allocates on the
    // server's worker thread. Non-zero mallocs here show the counter sees the server's threads.
    roundTripBenchmark("control: Tattach + Tclunk (2 round trips; attach allocates)", [
        Step(expected: .rattach) { w throws(WireError) in
            try Request.attach(fid: 3, afid: NineP.noFid, uname: ByteView(static: ""), aname: ByteView(static: ""), nuname: getuid())
                .encode(tag: 7, into: &w)
        },
        Step(expected: .rclunk) { w throws(WireError) in try Request.clunk(fid: 3).encode(tag: 8, into: &w) },
    ])
}
