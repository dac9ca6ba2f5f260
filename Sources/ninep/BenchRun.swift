import Glibc
import NinePClient
import Synchronization

/// One workload: `concurrency` tasks call in a loop on one connection; each records its
/// latencies in its own fixed histogram, so the measured loop allocates nothing of its own.
struct BenchRun {
    let client: NinePClient
    let path: String
    let listing: String
    let directory: String
    let workload: Workload
    let ioSize: Int
    let fileSize: Int
    let concurrency: Int
    let warmup: Duration
    let duration: Duration
    let countAllocations: Bool

    /// What a worker measured.
    struct Tally: Sendable {
        var operations: UInt64 = 0
        var entries = 0
        var buckets: [UInt64] = []
        var allocationsBefore: UInt64 = 0
        var allocationsAfter: UInt64 = 0
    }

    func run() async throws -> BenchResult {
        let file: RemoteFile = try await workload == .write ? client.open(path, .readWrite) : client.open(path)
        let clock = ContinuousClock()
        let start = clock.now + .milliseconds(20)
        let measureFrom = start + warmup
        let until = measureFrom + duration
        let buffers = (0..<concurrency).map { _ in OwnedBuffer(bytes: .allocate(byteCount: max(ioSize, SmallFile.size), alignment: 4096)) }
        defer { for buffer in buffers { buffer.bytes.deallocate() } }
        for buffer in buffers { buffer.bytes.initializeMemory(as: UInt8.self, repeating: 0x5a) }
        let blocks = max(1, fileSize / ioSize)
        let barrier = Barrier(concurrency: concurrency)
        let tallies = try await withThrowingTaskGroup(of: Tally.self) { group in
            for worker in 0..<concurrency {
                let buffer = buffers[worker]
                // The client's executor: replies wake the workers without going through
                // libdispatch (which allocates for wake-ups from the reader thread).
                group.addTask(executorPreference: client.executor) {
                    try await work(
                        worker: worker, file: file, buffer: buffer, blocks: blocks, measureFrom: measureFrom, until: until, barrier: barrier)
                }
            }
            var all: [Tally] = []
            for try await tally in group { all.append(tally) }
            return all
        }
        await file.close()
        var histogram = LatencyHistogram()
        var operations: UInt64 = 0
        var allocations: UInt64 = 0
        let entries = tallies.map(\.entries).max() ?? 0
        for tally in tallies {
            var part = LatencyHistogram()
            part.load(tally.buckets)
            histogram.merge(part)
            operations += tally.operations
            if tally.allocationsAfter >= tally.allocationsBefore { allocations = max(allocations, tally.allocationsAfter - tally.allocationsBefore) }
        }
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let bytesPerOperation = workload == .read || workload == .randread || workload == .write ? ioSize : workload == .smallfile ? SmallFile.size : 0
        return BenchResult(
            workload: workload, size: bytesPerOperation, concurrency: concurrency, seconds: seconds, operations: operations,
            bytes: operations * UInt64(bytesPerOperation), entries: workload == .readdir ? entries : nil,
            p50: histogram.percentile(0.50), p90: histogram.percentile(0.90), p99: histogram.percentile(0.99),
            allocationsPerOperation: countAllocations && operations > 0 ? Double(allocations) / Double(operations) : nil,
            allocations: countAllocations ? allocations : nil)
    }

    /// Lets the last worker to stop read the allocation counter before any of them does its
    /// (allocating) bookkeeping: the others wait on a continuation, which allocates nothing.
    final class Barrier: Sendable {
        struct State {
            var stopped = 0
            var released = false
            var waiting: [UnsafeContinuation<Void, Never>] = []
        }

        let state: Mutex<State>
        let allocationsAfter = Atomic<UInt64>(0)

        init(concurrency: Int) {
            var initial = State()
            initial.waiting.reserveCapacity(concurrency)
            state = Mutex(initial)
        }

        func arrive(of concurrency: Int, countAllocations: Bool) async {
            let last = state.withLock { state in
                state.stopped += 1
                return state.stopped == concurrency
            }
            if last {
                if countAllocations { allocationsAfter.store(AllocationCounter.read(), ordering: .sequentiallyConsistent) }
                let waiting = state.withLock { state in
                    state.released = true
                    return state.waiting
                }
                for continuation in waiting { continuation.resume() }
                return
            }
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let released = state.withLock { state in
                    if !state.released { state.waiting.append(continuation) }
                    return state.released
                }
                if released { continuation.resume() }
            }
        }
    }

    /// One worker: warm up, then count. Worker 0 reads the allocation counter when it starts
    /// measuring (all workers share the instants) and once all have stopped, so the count covers
    /// the whole process during the measured window.
    private func work(
        worker: Int, file: RemoteFile, buffer: OwnedBuffer, blocks: Int, measureFrom: ContinuousClock.Instant,
        until: ContinuousClock.Instant, barrier: Barrier
    ) async throws -> Tally {
        var histogram = LatencyHistogram()
        var tally = Tally()
        var block = worker * 7919
        // randread's generator (xorshift64), seeded per task: no allocation, no lock.
        var random = UInt64(worker + 1) &* 0x9E37_79B9_7F4A_7C15
        var measuring = false
        let clock = ContinuousClock()
        let readOnly = UnsafeRawBufferPointer(buffer.bytes)
        let small = SmallFile(client: client, path: Formatting.join(directory, "ninep-small-\(worker)"), data: UnsafeRawBufferPointer(rebasing: readOnly[0..<SmallFile.size]))
        if workload == .smallfile { try? await client.remove(small.path) }  // left by an interrupted run
        while true {
            let began = clock.now
            if began >= until { break }
            if !measuring && began >= measureFrom {
                measuring = true
                if worker == 0 && countAllocations { tally.allocationsBefore = AllocationCounter.read() }
            }
            if workload == .randread {
                random ^= random << 13
                random ^= random >> 7
                random ^= random << 17
                block = Int(random % UInt64(blocks))
            } else {
                block = (block + 1) % blocks
            }
            let offset = UInt64(block * ioSize)
            switch workload {
            case .read, .randread: _ = try await file.read(into: buffer.bytes, at: offset)
            case .write: _ = try await file.write(readOnly, at: offset)
            case .getattr: _ = try await file.stat()
            case .metadata: _ = try await client.stat(path)
            case .smallfile: try await small.cycle()
            case .readdir: tally.entries = try await countEntries()
            case .seqread, .seqwrite: preconditionFailure("sequential workloads run in SequentialRun")
            }
            if measuring {
                let elapsed = clock.now - began
                let (seconds, attoseconds) = elapsed.components
                histogram.record(nanoseconds: UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000))
            }
        }
        await barrier.arrive(of: concurrency, countAllocations: countAllocations)
        if worker == 0 { tally.allocationsAfter = barrier.allocationsAfter.load(ordering: .sequentiallyConsistent) }
        tally.operations = histogram.total
        tally.buckets = histogram.export()
        return tally
    }


    /// One full listing of `listing`: the number of entries ("." and ".." left out).
    private func countEntries() async throws -> Int {
        var count = 0
        for try await _ in client.readdir(listing) { count += 1 }
        return count
    }
}

extension LatencyHistogram {
    func export() -> [UInt64] {
        (0..<(LatencyHistogram.subBuckets * LatencyHistogram.powers)).map { bucketCount($0) }
    }

    mutating func load(_ buckets: [UInt64]) {
        for (index, count) in buckets.enumerated() { add(count, toBucket: index) }
    }
}
