import ArgumentParser
import Glibc
import NinePClient
import NinePMemory
import Synchronization

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput and latency against a server.",
        discussion: """
            Workloads (repeat --workload to run several, in order):
              read      Tread of --size bytes at rotating offsets of a --file-size file
              randread  Tread of --size bytes at random --size-aligned offsets of that file
              write     Twrite of --size bytes at rotating offsets of the same file
              getattr   Tgetattr on an open fid (no walk)
              metadata  stat by path: Twalk + Tgetattr + Tclunk
              seqread   one pass over the whole --file-size file, --size per Tread
              seqwrite  the file truncated, then written whole, --size per Twrite
              smallfile create + write 4 KiB + clunk + stat by path + unlink
              readdir   list --listing whole (Treaddir until empty); entries/s

            --concurrency tasks share one connection, each with one call in flight.
            On a unix socket to ninepd the file data moves by localio descriptor
            (pread/pwrite on a descriptor the server grants, docs/LOCALIO.md) unless
            --no-localio; the first line says which ("localio: on" or "off" and why).
            Every workload warms up for --warmup seconds, then runs for --duration
            seconds and reports operations and bytes per second and latency percentiles
            (p50/p90/p99). seqread and seqwrite instead make one pass over the file
            (no warm-up; --size rounded down to whole 4 KiB blocks, the tasks taking
            the next block in turn) and report the time it took. The work file is
            --directory/ninep-bench.dat (created, and removed at the end unless
            --keep-file); smallfile works on --directory/ninep-small-TASK.

            Under an LD_PRELOAD interposer that exports ninep_alloc_calls() (see
            README), --count-allocations also reports heap allocations per operation.

              ninep bench --workload read --size 1m --concurrency 8
              ninep bench --json --duration 10 > result.json
              ninep bench --workload seqwrite --workload seqread --size 1m --file-size 1g
            """
    )

    @OptionGroup var server: ServerOptions
    @Option(help: "read, randread, write, getattr, metadata, seqread, seqwrite, smallfile or readdir; repeat for several.")
    var workload: [Workload] = [.read, .write, .getattr, .metadata]
    @Option(help: "Bytes per read or write: bytes, or with a K, M or G suffix (64K).") var size: ByteCount = ByteCount(65536)
    @Option(help: "Size of the work file: bytes, or with a K, M or G suffix (1G).") var fileSize: ByteCount = ByteCount(64 << 20)
    @Option(help: "Tasks issuing calls at once.") var concurrency = 4
    @Option(help: "Seconds measured per workload.") var duration = 5.0
    @Option(help: "Seconds of warm-up per workload (not measured).") var warmup = 1.0
    @Option(help: "Remote directory for the work file.") var directory = "/"
    @Option(help: "Remote directory the readdir workload lists.") var listing = "/"
    @Flag(help: "Leave the work file at the end; reuse one of --file-size bytes already there.") var keepFile = false
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Flag(help: "Report heap allocations per operation (needs the interposer).") var countAllocations = false
    @Flag(help: "Measure the 9P path even when ninepd shares this host (no localio descriptors; docs/LOCALIO.md).") var noLocalio = false

    func validate() throws {
        guard concurrency >= 1 && concurrency <= 1024 else { throw ValidationError("--concurrency must be 1 to 1024") }
        guard duration > 0 && warmup >= 0 else { throw ValidationError("--duration must be positive, --warmup not negative") }
        guard size.bytes >= 1 && fileSize.bytes >= size.bytes else { throw ValidationError("--file-size must be at least --size") }
    }

    func run() async throws {
        if countAllocations && !AllocationCounter.available {
            Report.printError("ninep: bench: --count-allocations needs LD_PRELOAD of an interposer exporting ninep_alloc_calls")
            throw ExitCode(64)
        }
        let client = try await server.connect(for: "bench", localIO: noLocalio ? .disabled : .automatic)
        let path = Formatting.join(directory, "ninep-bench.dat")
        var results: [BenchResult] = []
        var localIO = "off"
        do {
            let ioSize = min(size.bytes, client.maxIOSize)
            try await prepareFile(client, path)
            localIO = try await localIOState(client, path)
            if !json { print("localio: \(localIO)") }
            for kind in workload {
                let result: BenchResult
                if kind.isSequential {
                    result = try await SequentialRun(
                        client: client, path: path, workload: kind, ioSize: max(4096, ioSize & ~4095), fileSize: fileSize.bytes,
                        concurrency: concurrency
                    ).run()
                } else {
                    result = try await BenchRun(
                        client: client, path: path, listing: listing, directory: directory, workload: kind, ioSize: ioSize,
                        fileSize: fileSize.bytes, concurrency: concurrency, warmup: .milliseconds(Int64(warmup * 1000)),
                        duration: .milliseconds(Int64(duration * 1000)), countAllocations: countAllocations
                    ).run()
                }
                results.append(result)
                if !json { print(result.text) }
            }
            if !keepFile { try? await client.remove(path) }
        } catch {
            Report.failure("bench", error, path: path)
            throw ExitCode(Report.status(error))
        }
        if json {
            let server = (try? self.server.address().description) ?? ""
            print("{\"server\":\"\(server)\",\"msize\":\(client.msize),\"localio\":\"\(localIO)\",\"results\":[\(results.map(\.json).joined(separator: ","))]}")
        }
    }

    /// Whether the workloads' file data moves by localio descriptor: "on" when the session
    /// proved locality and the work file is granted, else "off" and why.
    private func localIOState(_ client: NinePClient, _ path: String) async throws -> String {
        if noLocalio { return "off (--no-localio)" }
        guard client.usesLocalIO else { return "off (not offered: TCP, or a server without the extension)" }
        let file = try await client.open(path, .readWrite)
        let granted = file.usesLocalIO
        await file.close()
        return granted ? "on" : "off (the server refused the grant)"
    }

    /// The work file: `fileSize` bytes of a pattern (written once), or empty when the first
    /// workload to use its data is seqwrite (which writes it) or none does. With --keep-file, a
    /// file already there of the right size is used as it is.
    private func prepareFile(_ client: NinePClient, _ path: String) async throws {
        if keepFile, let existing = try? await client.stat(path), existing.size == UInt64(fileSize.bytes) { return }
        let file: RemoteFile
        do {
            file = try await client.open(path, .write, options: .truncate)  // left by an interrupted run
        } catch let error as NinePError where error.errno == ENOENT {
            file = try await client.create(path, permissions: 0o644, .write)
        }
        let firstData = workload.first { $0.usesFileData }
        guard firstData != nil && firstData != .seqwrite else {
            await file.close()
            return
        }
        let pattern = (0..<client.maxIOSize).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try await using(file) { file in
            var offset = 0
            while offset < fileSize.bytes {
                let count = min(pattern.count, fileSize.bytes - offset)
                try await file.write(contentsOf: Array(pattern[0..<count]), at: UInt64(offset))
                offset += count
            }
        }
    }
}

enum Workload: String, CaseIterable, ExpressibleByArgument, Sendable {
    case read, randread, write, getattr, metadata, seqread, seqwrite, smallfile, readdir

    /// One timed pass over the file rather than a loop for --duration.
    var isSequential: Bool { self == .seqread || self == .seqwrite }

    /// Reads or writes the work file's data.
    var usesFileData: Bool { self == .read || self == .randread || self == .write || isSequential }
}

/// A byte count written as 4096, 64K, 1M, 2G (or 64KiB, 1m): read by `MemoryPlan.parse(bytes:)`,
/// as ninepd reads --memory-budget and both commands read --msize.
struct ByteCount: ExpressibleByArgument, Sendable {
    let bytes: Int

    init(_ bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        guard let bytes = MemoryPlan.parse(bytes: argument) else { return nil }
        self.bytes = bytes
    }

    var defaultValueDescription: String { String(bytes) }
}
