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
    private var grantsNow: [UInt64]
    private var waitsNow: [UInt64]
    /// Wait samples moved out of the arena's ring; a raw buffer, so iterating it needs no
    /// conformance lookup (which allocates on first use in unoptimised builds).
    private let drainedSites: UnsafeMutablePointer<Int>
    private let drainedNanoseconds: UnsafeMutablePointer<UInt64>

    /// `factory`: the metrics backend (the one bootstrapped in MetricsSystem by default).
    public init(arena: MemoryArena, factory: any MetricsFactory = MetricsSystem.factory) {
        self.arena = arena
        let sites = arena.statistics.sites
        waitTimers = sites.map { Metrics.Timer(label: "ninep_memory_wait", dimensions: [("site", $0)], factory: factory) }
        grantCounters = sites.map { Counter(label: "ninep_memory_grants_total", dimensions: [("site", $0)], factory: factory) }
        waitCounters = sites.map { Counter(label: "ninep_memory_waits_total", dimensions: [("site", $0)], factory: factory) }
        droppedWaits = Counter(label: "ninep_memory_wait_samples_dropped_total", factory: factory)
        freeSmall = Gauge(label: "ninep_pool_free_buffers", dimensions: [("pool", "small")], factory: factory)
        freeLarge = Gauge(label: "ninep_pool_free_buffers", dimensions: [("pool", "large")], factory: factory)
        freeParking = Gauge(label: "ninep_pool_free_buffers", dimensions: [("pool", "parking")], factory: factory)
        waiting = Gauge(label: "ninep_memory_waiters", factory: factory)
        Gauge(label: "ninep_pool_buffers", dimensions: [("pool", "small")], factory: factory).record(arena.small.capacity)
        Gauge(label: "ninep_pool_buffers", dimensions: [("pool", "large")], factory: factory).record(arena.large.capacity)
        Gauge(label: "ninep_pool_buffers", dimensions: [("pool", "parking")], factory: factory).record(arena.plan.parkingReserve)
        Gauge(label: "ninep_pool_buffer_bytes", dimensions: [("pool", "small")], factory: factory).record(arena.small.bufferSize)
        Gauge(label: "ninep_pool_buffer_bytes", dimensions: [("pool", "large")], factory: factory).record(arena.large.bufferSize)
        lastGrants = Array(repeating: 0, count: sites.count)
        lastWaits = Array(repeating: 0, count: sites.count)
        grantsNow = Array(repeating: 0, count: sites.count)
        waitsNow = Array(repeating: 0, count: sites.count)
        drainedSites = .allocate(capacity: WaitStatistics.ringCapacity)
        drainedNanoseconds = .allocate(capacity: WaitStatistics.ringCapacity)
    }

    deinit {
        drainedSites.deallocate()
        drainedNanoseconds.deallocate()
    }

    /// Pushes what changed since the last call into swift-metrics. Allocates nothing itself
    /// (every array here is sized at init), so it can run while malloc refuses; what the
    /// installed metrics backend does is the backend's business.
    public func publish() {
        var dropped: UInt64 = 0
        var drainedCount = 0
        var free = (small: 0, large: 0, parking: 0)
        var waitingNow = 0
        arena.lock.withLock {
            (drainedCount, dropped) = arena.statistics.drainLocked(sites: drainedSites, nanoseconds: drainedNanoseconds)
            arena.statistics.copyCountsLocked(grants: &grantsNow, waits: &waitsNow)
            free = (arena.small.freeCount, arena.large.freeCount, arena.parkingUnusedForReport)
            waitingNow = arena.waitingCountLocked
        }
        var index = 0
        while index < drainedCount {
            waitTimers[drainedSites[index]].recordNanoseconds(Int64(clamping: drainedNanoseconds[index]))
            index += 1
        }
        if dropped > 0 { droppedWaits.increment(by: Int64(clamping: dropped)) }
        for index in 0..<grantsNow.count {
            if grantsNow[index] > lastGrants[index] { grantCounters[index].increment(by: Int64(clamping: grantsNow[index] - lastGrants[index])) }
            if waitsNow[index] > lastWaits[index] { waitCounters[index].increment(by: Int64(clamping: waitsNow[index] - lastWaits[index])) }
            lastGrants[index] = grantsNow[index]
            lastWaits[index] = waitsNow[index]
        }
        freeSmall.record(free.small)
        freeLarge.record(free.large)
        freeParking.record(free.parking)
        waiting.record(waitingNow)
    }
}
