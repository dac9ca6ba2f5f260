import Glibc
import NinePClient
import Synchronization

/// seqread and seqwrite: one timed pass over the whole work file. `concurrency` tasks share one
/// connection and take the next `ioSize` block in turn, so up to `concurrency` calls are in
/// flight and the file is covered once, front to back. seqwrite truncates the file first.
struct SequentialRun {
    let client: NinePClient
    let path: String
    let workload: Workload
    let ioSize: Int
    let fileSize: Int
    let concurrency: Int

    /// The next block to move, shared by the tasks.
    final class Cursor: Sendable {
        let next = Atomic<Int>(0)
    }

    struct Tally: Sendable {
        var bytes: UInt64 = 0
        var buckets: [UInt64] = []
    }

    func run() async throws -> BenchResult {
        let file: RemoteFile = try await workload == .seqwrite ? client.open(path, .write, options: .truncate) : client.open(path)
        let buffers = (0..<concurrency).map { _ in OwnedBuffer(bytes: .allocate(byteCount: ioSize, alignment: 4096)) }
        defer { for buffer in buffers { buffer.bytes.deallocate() } }
        for buffer in buffers { buffer.bytes.initializeMemory(as: UInt8.self, repeating: 0x5a) }
        let cursor = Cursor()
        let clock = ContinuousClock()
        let began = clock.now
        let tallies: [Tally]
        do {
            tallies = try await withThrowingTaskGroup(of: Tally.self) { group in
                for worker in 0..<concurrency {
                    let buffer = buffers[worker]
                    group.addTask(executorPreference: client.executor) {
                        try await move(file: file, buffer: buffer, cursor: cursor)
                    }
                }
                var all: [Tally] = []
                for try await tally in group { all.append(tally) }
                return all
            }
        } catch {
            await file.close()
            throw error
        }
        let elapsed = clock.now - began
        await file.close()
        var histogram = LatencyHistogram()
        var bytes: UInt64 = 0
        for tally in tallies {
            var part = LatencyHistogram()
            part.load(tally.buckets)
            histogram.merge(part)
            bytes += tally.bytes
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return BenchResult(
            workload: workload, size: ioSize, concurrency: concurrency, seconds: seconds, operations: histogram.total,
            bytes: bytes, entries: nil, p50: histogram.percentile(0.50), p90: histogram.percentile(0.90),
            p99: histogram.percentile(0.99), allocationsPerOperation: nil, allocations: nil)
    }

    /// One task: blocks until the cursor passes the end of the file. A short read or write is
    /// an error: the pass must move exactly the file.
    private func move(file: RemoteFile, buffer: OwnedBuffer, cursor: Cursor) async throws -> Tally {
        var histogram = LatencyHistogram()
        var tally = Tally()
        let clock = ContinuousClock()
        while true {
            let offset = cursor.next.add(1, ordering: .relaxed).oldValue * ioSize
            if offset >= fileSize { break }
            let count = min(ioSize, fileSize - offset)
            let began = clock.now
            let moved: Int
            if workload == .seqwrite {
                moved = try await file.write(UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<count]), at: UInt64(offset))
            } else {
                moved = try await file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<count]), at: UInt64(offset))
            }
            let (seconds, attoseconds) = (clock.now - began).components
            histogram.record(nanoseconds: UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000))
            guard moved == count else {
                throw BenchError("\(path): \(workload == .seqwrite ? "wrote" : "read") \(moved) of \(count) bytes at offset \(offset)")
            }
            tally.bytes += UInt64(moved)
        }
        tally.buckets = histogram.export()
        return tally
    }
}
