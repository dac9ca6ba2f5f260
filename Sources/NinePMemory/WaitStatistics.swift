import Glibc

/// Per call site that waits for memory: how often it was granted at once, how often it had
/// to wait, and how long (a histogram in powers of two of microseconds). Fixed storage made
/// at start-up; recording is a few integer updates under the arena's lock.
///
/// Recent wait durations also go into a ring that `MemoryMetrics` drains into swift-metrics
/// timers off the request path, so no metrics backend is ever called while memory is short.
public final class WaitStatistics: @unchecked Sendable {
    // @unchecked Sendable: all storage is touched only with the owning arena's lock held
    // (`...Locked` methods), or read through `snapshot`, which takes that lock.
    public let sites: [String]
    /// 0: < 1 µs, k: [2^(k-1), 2^k) µs, last: everything longer.
    public static let bucketCount = 32
    private let grants: UnsafeMutablePointer<UInt64>
    private let waits: UnsafeMutablePointer<UInt64>
    private let cancels: UnsafeMutablePointer<UInt64>
    private let waitedTotal: UnsafeMutablePointer<UInt64>
    private let waitedMax: UnsafeMutablePointer<UInt64>
    private let buckets: UnsafeMutablePointer<UInt64>
    static let ringCapacity = 4096
    private let ringSite: UnsafeMutablePointer<Int32>
    private let ringNanoseconds: UnsafeMutablePointer<UInt64>
    private var ringCount = 0
    private var ringDropped: UInt64 = 0

    init(sites: [String]) {
        self.sites = sites
        func zeroed<T: FixedWidthInteger>(_ count: Int, _: T.Type) -> UnsafeMutablePointer<T> {
            let pointer = UnsafeMutablePointer<T>.allocate(capacity: max(count, 1))
            pointer.initialize(repeating: 0, count: max(count, 1))
            return pointer
        }
        grants = zeroed(sites.count, UInt64.self)
        waits = zeroed(sites.count, UInt64.self)
        cancels = zeroed(sites.count, UInt64.self)
        waitedTotal = zeroed(sites.count, UInt64.self)
        waitedMax = zeroed(sites.count, UInt64.self)
        buckets = zeroed(sites.count * Self.bucketCount, UInt64.self)
        ringSite = zeroed(Self.ringCapacity, Int32.self)
        ringNanoseconds = zeroed(Self.ringCapacity, UInt64.self)
    }

    deinit {
        for pointer in [grants, waits, cancels, waitedTotal, waitedMax, buckets, ringNanoseconds] { pointer.deallocate() }
        ringSite.deallocate()
    }

    static func bucket(nanoseconds: UInt64) -> Int {
        let micros = nanoseconds / 1000
        if micros == 0 { return 0 }
        return min(bucketCount - 1, 64 - micros.leadingZeroBitCount)
    }

    func recordGrantLocked(site: Int, waitedNanoseconds: UInt64?) {
        grants[site] &+= 1
        if let waited = waitedNanoseconds { recordWaitLocked(site: site, nanoseconds: waited) }
    }

    func recordCancelLocked(site: Int, waitedNanoseconds: UInt64) {
        cancels[site] &+= 1
        recordWaitLocked(site: site, nanoseconds: waitedNanoseconds)
    }

    private func recordWaitLocked(site: Int, nanoseconds: UInt64) {
        waits[site] &+= 1
        waitedTotal[site] &+= nanoseconds
        waitedMax[site] = max(waitedMax[site], nanoseconds)
        buckets[site * Self.bucketCount + Self.bucket(nanoseconds: nanoseconds)] &+= 1
        if ringCount < Self.ringCapacity {
            ringSite[ringCount] = Int32(site)
            ringNanoseconds[ringCount] = nanoseconds
            ringCount += 1
        } else {
            ringDropped &+= 1
        }
    }

    /// One site's figures at one moment.
    public struct SiteSnapshot: Sendable {
        public var name: String
        public var grants: UInt64
        public var waits: UInt64
        public var cancels: UInt64
        public var waitedNanoseconds: UInt64
        public var maxWaitNanoseconds: UInt64
        public var buckets: [UInt64]

        /// Upper bound of the bucket holding the given quantile of waits, in nanoseconds.
        public func quantileNanoseconds(_ q: Double) -> UInt64 {
            let total = buckets.reduce(0, +)
            guard total > 0 else { return 0 }
            let target = UInt64((Double(total) * q).rounded(.up))
            var seen: UInt64 = 0
            for (index, count) in buckets.enumerated() {
                seen += count
                if seen >= target {
                    return index == 0 ? 1000 : min(maxWaitNanoseconds, (UInt64(1) << UInt64(index)) * 1000)
                }
            }
            return maxWaitNanoseconds
        }
    }

    func snapshotLocked() -> [SiteSnapshot] {
        sites.indices.map { site in
            SiteSnapshot(
                name: sites[site], grants: grants[site], waits: waits[site], cancels: cancels[site],
                waitedNanoseconds: waitedTotal[site], maxWaitNanoseconds: waitedMax[site],
                buckets: Array(UnsafeBufferPointer(start: buckets + site * Self.bucketCount, count: Self.bucketCount)))
        }
    }

    /// Copies the grant and wait counters into arrays of one entry per site, lock held.
    func copyCountsLocked(grants grantsOut: inout [UInt64], waits waitsOut: inout [UInt64]) {
        for site in sites.indices {
            grantsOut[site] = grants[site]
            waitsOut[site] = waits[site]
        }
    }

    /// Moves the recent waits out of the ring into two arrays of `ringCapacity` entries
    /// (lock held); returns how many were moved and how many were dropped since last time.
    func drainLocked(sites sitesOut: UnsafeMutablePointer<Int>, nanoseconds nanosecondsOut: UnsafeMutablePointer<UInt64>) -> (count: Int, dropped: UInt64) {
        var index = 0
        while index < ringCount {
            sitesOut[index] = Int(ringSite[index])
            nanosecondsOut[index] = ringNanoseconds[index]
            index += 1
        }
        let moved = ringCount
        ringCount = 0
        let dropped = ringDropped
        ringDropped = 0
        return (moved, dropped)
    }
}

extension MemoryArena {
    /// Records a wait for a fixed-table resource that is not a pool (a request slot of a
    /// connection), under the same site naming.
    public func recordWait(site: Int, nanoseconds: UInt64?) {
        lock.withLock { statistics.recordGrantLocked(site: site, waitedNanoseconds: nanoseconds) }
    }

    /// Every site's figures now.
    public func snapshot() -> [WaitStatistics.SiteSnapshot] {
        lock.withLock { statistics.snapshotLocked() }
    }

    /// Lines for the status dump (SIGUSR1): pools, then each site that was ever used.
    public func report() -> [String] {
        let (sites, free, waiting) = lock.withLock { (statistics.snapshotLocked(), (small.freeCount, large.freeCount, parkingUnusedForReport), waitingCountLocked) }
        var lines = [
            "memory pools: small \(free.0) of \(small.capacity) free (\(free.2) of \(plan.parkingReserve) parking buffers unused), large \(free.1) of \(large.capacity) free, \(waiting) waiting; \(locked ? "locked in RAM" : "NOT locked in RAM (mlock: \(String(cString: strerror(lockError))))")"
        ]
        for site in sites where site.grants > 0 || site.waits > 0 {
            let average = site.waits > 0 ? site.waitedNanoseconds / site.waits : 0
            lines.append(
                "memory wait site \(site.name): \(site.grants) grants, \(site.waits) waited (\(site.cancels) cancelled), wait avg \(Self.micros(average)) p50 ≤\(Self.micros(site.quantileNanoseconds(0.5))) p99 ≤\(Self.micros(site.quantileNanoseconds(0.99))) max \(Self.micros(site.maxWaitNanoseconds))")
        }
        return lines
    }

    static func micros(_ nanoseconds: UInt64) -> String {
        if nanoseconds >= 10_000_000 { return "\(nanoseconds / 1_000_000) ms" }
        return "\(nanoseconds / 1000) µs"
    }
}
