import Benchmark
import Glibc
import NinePMemory
import NinePTransport
import Synchronization

// Buffer pools on the request path: a BufferPool alone (take/put, no lock), and MemoryArena
// grants (lock, FIFO check, statistics) uncontended and with a second thread competing.
// Each measured iteration runs a batch of 1000 (the `batch` tag); scripts/bench-micro
// divides by it. Nothing here may allocate.

/// A function, not a global: Benchmark.Configuration is not Sendable.
func benchmarkConfiguration() -> Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        tags: ["batch": "1000"],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .milliseconds(500),
        maxIterations: 2_000
    )
}

/// A small arena: 16 small buffers, 4 large ones of 128 KiB + 4 KiB, no parking reserve.
func makeArena(smallBuffers: Int = 16) -> MemoryArena {
    let largeBytes = 128 * 1024 + MemoryPlan.alignmentSlack
    let plan = MemoryPlan(
        budget: smallBuffers * MemoryPlan.smallBufferBytes + 4 * largeBytes, largeBufferBytes: largeBytes,
        largeBuffers: 4, smallBuffers: smallBuffers, parkingPerConnection: 0, connectionSlots: 0, connectionSlotBytes: 0)
    do {
        return try MemoryArena(plan: plan, sites: ["benchmark", "competitor"])
    } catch {
        fatalError("cannot map the benchmark arena: \(error)")
    }
}

/// Acquires `need` and releases what it granted; the unit measured by the arena benchmarks.
@inline(__always)
func cycle(_ arena: MemoryArena, _ need: MemoryNeed, _ waiter: MemoryWaiter, site: Int) -> Bool {
    guard let grant = arena.acquire(need, waiter: waiter, site: site) else { return false }
    if let receive = grant.receive { arena.release(receive) }
    if let reply = grant.reply { arena.release(reply) }
    return true
}

/// A thread that runs arena cycles until told to stop, to contend with the measured thread.
final class Competitor: Sendable {
    private let stopRequested = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    let arena: MemoryArena
    let need: MemoryNeed

    init(arena: MemoryArena, need: MemoryNeed) {
        self.arena = arena
        self.need = need
    }

    func start() {
        DaemonThread.start(name: "competitor") { [self] in
            let waiter = MemoryWaiter()
            while !stopRequested.load(ordering: .acquiring) {
                _ = cycle(arena, need, waiter, site: 1)
            }
            stopped.store(true, ordering: .releasing)
        }
    }

    func stop() {
        stopRequested.store(true, ordering: .releasing)
        while !stopped.load(ordering: .acquiring) { usleep(100) }
    }
}

func poolBenchmark(_ name: String, _ pool: BufferPool) {
    Benchmark(name, configuration: benchmarkConfiguration()) { benchmark in
        for _ in benchmark.scaledIterations {
            guard let buffer = pool.take() else { return benchmark.error("\(name): pool empty") }
            blackHole(buffer.baseAddress)
            pool.put(buffer)
        }
    }
}

func arenaBenchmark(_ name: String, _ arena: MemoryArena, _ need: MemoryNeed, competitor: Competitor? = nil) {
    let waiter = MemoryWaiter()
    Benchmark(
        name, configuration: benchmarkConfiguration(),
        closure: { benchmark in
            for _ in benchmark.scaledIterations {
                guard cycle(arena, need, waiter, site: 0) else { return benchmark.error("\(name): arena closed") }
            }
        },
        setup: { competitor?.start() },
        teardown: { competitor?.stop() }
    )
}

let benchmarks: @Sendable () -> Void = {
    // Pools of their own, so the arena benchmarks start from untouched ones.
    let pools = makeArena()
    poolBenchmark("BufferPool take+put small", pools.small)
    poolBenchmark("BufferPool take+put large", pools.large)

    let small = MemoryNeed(receive: .small, reply: .none)
    let large = MemoryNeed(receive: .large, reply: .none)
    let readNeed = MemoryNeed(receive: .small, reply: .large)
    let arena = makeArena()
    arenaBenchmark("MemoryArena acquire+release small", arena, small)
    arenaBenchmark("MemoryArena acquire+release large", arena, large)
    arenaBenchmark("MemoryArena acquire+release small+large (a Tread)", arena, readNeed)

    // Two threads on one arena with enough buffers for both: lock contention only.
    let shared = makeArena()
    arenaBenchmark(
        "MemoryArena acquire+release small, 2 threads", shared, small,
        competitor: Competitor(arena: shared, need: small))
    // Two threads and one buffer: a grant either finds the buffer free or waits in the FIFO
    // for the other thread's release (a hand-off); p99 shows the waits.
    let scarce = makeArena(smallBuffers: 1)
    arenaBenchmark(
        "MemoryArena acquire+release of 1 small buffer shared by 2 threads", scarce, small,
        competitor: Competitor(arena: scarce, need: small))
}
