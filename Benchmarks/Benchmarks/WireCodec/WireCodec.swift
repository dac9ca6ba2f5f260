import Benchmark
import NinePWire

// Encode and decode of single 9P2000.L messages with NinePWire, into and out of memory
// allocated once here. Each measured iteration runs a batch of calls (the `batch` tag), so the
// clock's own cost does not swamp a call of tens of nanoseconds; scripts/bench-micro divides
// time and malloc counts by the batch. A codec call must allocate nothing.

/// Memory every benchmark here encodes into or decodes from. Allocated when the benchmarks are
/// registered and never freed (the process ends after the run).
struct CodecMemory {
    /// Output of every encode: large enough for the biggest frame (a 128 KiB Twrite/Rread).
    let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 4096)
    let payload4K: ByteView
    let payload128K: ByteView

    init() {
        payload4K = CodecMemory.pattern(4096)
        payload128K = CodecMemory.pattern(128 * 1024)
    }

    /// `count` bytes of a repeating pattern, allocated once.
    static func pattern(_ count: Int) -> ByteView {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
        for i in 0..<count { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        return ByteView(UnsafeRawBufferPointer(bytes))
    }

    /// A copy of one encoded frame in its own memory, for the decode benchmarks.
    func frame(_ encode: (inout WireWriter) throws(WireError) -> Int) -> UnsafeRawBufferPointer {
        var writer = WireWriter(output)
        let length: Int
        do { length = try encode(&writer) } catch { fatalError("cannot encode a sample frame: \(error)") }
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
        copy.copyMemory(from: UnsafeRawBufferPointer(rebasing: output[0..<length]))
        return UnsafeRawBufferPointer(copy)
    }
}

/// The largest msize any sample needs (a 128 KiB payload plus its header).
let msize: UInt32 = 256 * 1024

func configuration(batch: BenchmarkScalingFactor) -> Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        tags: ["batch": String(batch.rawValue)],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: batch,
        maxDuration: .milliseconds(300),
        maxIterations: batch == .one ? 20_000 : 2_000
    )
}

/// A benchmark that encodes with `encode` into `memory.output`, `batch` times per iteration.
func encodeBenchmark(
    _ name: String, _ memory: CodecMemory, batch: BenchmarkScalingFactor = .kilo,
    _ encode: @escaping (inout WireWriter) throws(WireError) -> Int
) {
    let output = memory.output
    Benchmark("encode \(name)", configuration: configuration(batch: batch)) { benchmark in
        for _ in benchmark.scaledIterations {
            var writer = WireWriter(output)
            do { blackHole(try encode(&writer)) } catch { benchmark.error("encode \(name): \(error)") }
        }
    }
}

/// A benchmark that decodes the T-message `frame`, `batch` times per iteration.
func decodeRequestBenchmark(_ name: String, _ frame: UnsafeRawBufferPointer, batch: BenchmarkScalingFactor = .kilo) {
    Benchmark("decode \(name)", configuration: configuration(batch: batch)) { benchmark in
        for _ in benchmark.scaledIterations {
            do { blackHole(try TMessage.decode(frame, msize: msize)) } catch { benchmark.error("decode \(name): \(error)") }
        }
    }
}

/// A benchmark that decodes the R-message `frame`, `batch` times per iteration.
func decodeResponseBenchmark(_ name: String, _ frame: UnsafeRawBufferPointer, batch: BenchmarkScalingFactor = .kilo) {
    Benchmark("decode \(name)", configuration: configuration(batch: batch)) { benchmark in
        for _ in benchmark.scaledIterations {
            do { blackHole(try RMessage.decode(frame, msize: msize)) } catch { benchmark.error("decode \(name): \(error)") }
        }
    }
}

/// Registers encode and decode of one request.
func request(_ name: String, _ memory: CodecMemory, _ request: Request, batch: BenchmarkScalingFactor = .kilo) {
    encodeBenchmark(name, memory, batch: batch) { (w: inout WireWriter) throws(WireError) in try request.encode(tag: 1, into: &w) }
    decodeRequestBenchmark(name, memory.frame { (w: inout WireWriter) throws(WireError) in try request.encode(tag: 1, into: &w) }, batch: batch)
}

/// Registers encode and decode of one reply.
func response(_ name: String, _ memory: CodecMemory, _ response: Response, batch: BenchmarkScalingFactor = .kilo) {
    encodeBenchmark(name, memory, batch: batch) { (w: inout WireWriter) throws(WireError) in try response.encode(tag: 1, into: &w) }
    decodeResponseBenchmark(name, memory.frame { (w: inout WireWriter) throws(WireError) in try response.encode(tag: 1, into: &w) }, batch: batch)
}

/// Attributes as a server fills them for a regular file.
func sampleAttributes() -> Attributes {
    var a = Attributes()
    a.valid = 0x3FFF
    a.qid = Qid(type: Qid.typeFile, version: 7, path: 0x1234_5678)
    a.mode = 0o100644; a.uid = 1000; a.gid = 1000; a.nlink = 1; a.size = 1 << 20
    a.blockSize = 4096; a.blocks = 2048
    a.atimeSeconds = 1_700_000_000; a.atimeNanoseconds = 1
    a.mtimeSeconds = 1_700_000_001; a.mtimeNanoseconds = 2
    a.ctimeSeconds = 1_700_000_002; a.ctimeNanoseconds = 3
    a.generation = 1; a.dataVersion = 9
    return a
}

/// Names of the sample directory: 32 entries "entry-00" ... "entry-31" (8 bytes each).
let directoryNames: [StaticString] = [
    "entry-00", "entry-01", "entry-02", "entry-03", "entry-04", "entry-05", "entry-06", "entry-07",
    "entry-08", "entry-09", "entry-10", "entry-11", "entry-12", "entry-13", "entry-14", "entry-15",
    "entry-16", "entry-17", "entry-18", "entry-19", "entry-20", "entry-21", "entry-22", "entry-23",
    "entry-24", "entry-25", "entry-26", "entry-27", "entry-28", "entry-29", "entry-30", "entry-31",
]

/// An Rreaddir of the 32 sample entries, written as the server writes it (DirEntryWriter).
func encodeReaddir(into buffer: UnsafeMutableRawBufferPointer) throws(WireError) -> Int {
    var entries = try DirEntryWriter(into: buffer, tag: 1, maxCount: 8192)
    for (index, name) in directoryNames.enumerated() {
        let qid = Qid(type: Qid.typeFile, version: 0, path: UInt64(index) &+ 100)
        guard entries.append(qid: qid, offset: UInt64(index + 1), type: 8, name: name) else { throw .noRoom }
    }
    return entries.finish()
}

let walkNames: [StaticString] = ["usr", "share", "doc"]

let benchmarks: @Sendable () -> Void = {
    let memory = CodecMemory()

    request("Tversion", memory, .version(msize: msize, version: ByteView(static: "9P2000.L")))
    request("Tattach", memory, .attach(
        fid: 0, afid: NineP.noFid, uname: ByteView(static: "root"), aname: ByteView(static: "/srv/export"), nuname: 0))
    // Twalk: encoded from names as a client does (Request.walk holds a decoded view).
    encodeBenchmark("Twalk 3 names", memory) { (w: inout WireWriter) throws(WireError) in
        try w.twalk(tag: 1, fid: 0, newfid: 1, names: walkNames)
    }
    decodeRequestBenchmark("Twalk 3 names", memory.frame { (w: inout WireWriter) throws(WireError) in
        try w.twalk(tag: 1, fid: 0, newfid: 1, names: walkNames)
    })
    // The same with Swift strings, as NinePClient walks.
    let stringNames = ["usr", "share", "doc"]
    encodeBenchmark("Twalk 3 names (String)", memory) { (w: inout WireWriter) throws(WireError) in
        try w.twalk(tag: 1, fid: 0, newfid: 1, names: stringNames)
    }
    request("Tlopen", memory, .lopen(fid: 1, flags: 2))
    request("Tread", memory, .read(fid: 1, offset: 4096, count: 4096))
    request("Twrite 4 KiB", memory, .write(fid: 1, offset: 0, data: memory.payload4K))
    request("Twrite 128 KiB", memory, .write(fid: 1, offset: 0, data: memory.payload128K), batch: .one)
    request("Tgetattr", memory, .getattr(fid: 1, mask: 0x3FFF))
    request("Treaddir", memory, .readdir(fid: 1, offset: 0, count: 8192))
    request("Tclunk", memory, .clunk(fid: 1))
    request("Tflush", memory, .flush(oldtag: 7))

    // Replies. Rread as the server writes it: data produced in place (here a memcpy standing
    // in for pread) after beginRread; and Response.read, which copies a payload view.
    let source4K = memory.payload4K.base
    encodeBenchmark("Rread 4 KiB (in place)", memory) { (w: inout WireWriter) throws(WireError) in
        let region = try w.beginRread(tag: 1, maxCount: 4096)
        region.copyMemory(from: source4K)
        return w.finishRread(reserved: region.count, produced: source4K.count)
    }
    response("Rread 4 KiB", memory, .read(data: memory.payload4K))
    response("Rread 128 KiB", memory, .read(data: memory.payload128K), batch: .one)
    response("Rwrite", memory, .write(count: 4096))
    response("Rlopen", memory, .lopen(qid: Qid(type: Qid.typeFile, version: 1, path: 42), iounit: 0))
    response("Rgetattr", memory, .getattr(sampleAttributes()))
    encodeBenchmark("Rreaddir 32 entries", memory) { (w: inout WireWriter) throws(WireError) in
        try encodeReaddir(into: w.buffer)
    }
    decodeResponseBenchmark("Rreaddir 32 entries", memory.frame { (w: inout WireWriter) throws(WireError) in
        try encodeReaddir(into: w.buffer)
    })
    response("Rclunk", memory, .clunk)
    response("Rflush", memory, .flush)
    encodeBenchmark("Rlerror", memory) { (w: inout WireWriter) throws(WireError) in try w.rlerror(tag: 1, errno: 2) }
    decodeResponseBenchmark("Rlerror", memory.frame { (w: inout WireWriter) throws(WireError) in
        try w.rlerror(tag: 1, errno: 2)
    })
    encodeBenchmark("Rwalk 3 qids", memory) { (w: inout WireWriter) throws(WireError) in try encodeRwalk(&w) }
    decodeResponseBenchmark("Rwalk 3 qids", memory.frame { (w: inout WireWriter) throws(WireError) in try encodeRwalk(&w) })

    // A control: one heap allocation per operation, so a zero elsewhere is a real zero.
    Benchmark("control: one 64-byte array (1 malloc)", configuration: configuration(batch: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole([UInt8](repeating: 1, count: 64))
        }
    }
}

/// An Rwalk of 3 directory qids, written as the server writes it.
func encodeRwalk(_ w: inout WireWriter) throws(WireError) -> Int {
    try w.beginRwalk(tag: 1)
    for path: UInt64 in 1...3 { try w.qid(Qid(type: Qid.typeDir, version: 0, path: path)) }
    return w.finishRwalk(count: 3)
}
