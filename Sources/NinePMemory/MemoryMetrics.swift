import Metrics

/// Exposes the arena's telemetry as swift-metrics: per wait site a timer of wait durations
/// (`ninep_memory_wait`), counters of grants and waits; per pool gauges of free and total
/// buffers. `publish()` is called by a housekeeping thread (about once a second), never on
/// the request path, so a metrics backend that locks or allocates cannot slow a request or
/// fail one when memory is short.
public final class MemoryMetrics: @unchecked Sendable {
    // @unchecked Sendable: `publish()` is called from one housekeeping thread at a time
    // (documented contract); `lastGrants`/`lastWaits`/`drained` are only touched there. The
    // swift-metrics objects are Sendable.
    private let arena: MemoryArena
    private let waitTimers: [Metrics.Timer]
    private let grantCounters: [Counter]
    private let waitCounters: [Counter]
    private let droppedWaits: Counter
    private let freeSmall: Gauge
    private let freeLarge: Gauge
    private let freeParking: Gauge
    private let waiting: Gauge
    private var lastGrants: [UInt64]
    private var lastWaits: [UInt64]
    private var drained: [(site: Int, nanoseconds: UInt64)] = []

    public init(arena: MemoryArena) {
        self.arena = arena
        let sites = arena.statistics.sites
        waitTimers = sites.map { Metrics.Timer(label: "ninep_memory_wait", dimensions: [("site", $0)]) }
        grantCounters = sites.map { Counter(label: "ninep_memory_grants_total", dimensions: [("site", $0)]) }
        waitCounters = sites.map { Counter(label: "ninep_memory_waits_total", dimensions: [("site", $0)]) }
        droppedWaits = Counter(label: "ninep_memory_wait_samples_dropped_total")
        freeSmall = Gauge(label: "ninep_pool_free_buffers", dimensions: [("pool", "small")])
        freeLarge = Gauge(label: "ninep_pool_free_buffers", dimensions: [("pool", "large")])
        freeParking = Gauge(label: "ninep_pool_free_buffers", dimensions: [("pool", "parking")])
        waiting = Gauge(label: "ninep_memory_waiters")
        Gauge(label: "ninep_pool_buffers", dimensions: [("pool", "small")]).record(arena.small.capacity)
        Gauge(label: "ninep_pool_buffers", dimensions: [("pool", "large")]).record(arena.large.capacity)
        Gauge(label: "ninep_pool_buffers", dimensions: [("pool", "parking")]).record(arena.plan.parkingReserve)
        Gauge(label: "ninep_pool_buffer_bytes", dimensions: [("pool", "small")]).record(arena.small.bufferSize)
        Gauge(label: "ninep_pool_buffer_bytes", dimensions: [("pool", "large")]).record(arena.large.bufferSize)
        lastGrants = Array(repeating: 0, count: sites.count)
        lastWaits = Array(repeating: 0, count: sites.count)
        drained.reserveCapacity(WaitStatistics.ringCapacity)
    }

    /// Pushes what changed since the last call into swift-metrics.
    public func publish() {
        let (snapshot, free, waitingNow, dropped): ([WaitStatistics.SiteSnapshot], (Int, Int, Int), Int, UInt64) = arena.lock.withLock {
            let dropped = arena.statistics.drainLocked(into: &drained)
            return (
                arena.statistics.snapshotLocked(),
                (arena.small.freeCount, arena.large.freeCount, arena.parkingUnusedForReport),
                arena.waitingCountLocked, dropped
            )
        }
        for sample in drained { waitTimers[sample.site].recordNanoseconds(Int64(clamping: sample.nanoseconds)) }
        drained.removeAll(keepingCapacity: true)
        if dropped > 0 { droppedWaits.increment(by: Int64(clamping: dropped)) }
        for (index, site) in snapshot.enumerated() {
            if site.grants > lastGrants[index] { grantCounters[index].increment(by: Int64(clamping: site.grants - lastGrants[index])) }
            if site.waits > lastWaits[index] { waitCounters[index].increment(by: Int64(clamping: site.waits - lastWaits[index])) }
            lastGrants[index] = site.grants
            lastWaits[index] = site.waits
        }
        freeSmall.record(free.0)
        freeLarge.record(free.1)
        freeParking.record(free.2)
        waiting.record(waitingNow)
    }
}
