/// Latencies in a fixed log-linear histogram (64 buckets per power of two of nanoseconds, so
/// about 1.5% resolution): recording is two shifts and an increment, and nothing is allocated
/// while a benchmark runs.
struct LatencyHistogram: ~Copyable {
    static let subBuckets = 64
    static let powers = 48
    private let counts: UnsafeMutablePointer<UInt64>
    private(set) var total: UInt64 = 0

    init() {
        let n = LatencyHistogram.subBuckets * LatencyHistogram.powers
        counts = .allocate(capacity: n)
        counts.initialize(repeating: 0, count: n)
    }

    deinit { counts.deallocate() }

    mutating func record(nanoseconds: UInt64) {
        counts[LatencyHistogram.bucket(of: nanoseconds)] += 1
        total += 1
    }

    mutating func merge(_ other: borrowing LatencyHistogram) {
        for index in 0..<(LatencyHistogram.subBuckets * LatencyHistogram.powers) { counts[index] += other.counts[index] }
        total += other.total
    }

    /// The latency below which `fraction` of the samples fall (upper edge of its bucket).
    func percentile(_ fraction: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        let rank = UInt64((Double(total) * fraction).rounded(.up))
        var seen: UInt64 = 0
        for index in 0..<(LatencyHistogram.subBuckets * LatencyHistogram.powers) {
            seen += counts[index]
            if seen >= max(rank, 1) { return LatencyHistogram.upperEdge(of: index) }
        }
        return LatencyHistogram.upperEdge(of: LatencyHistogram.subBuckets * LatencyHistogram.powers - 1)
    }

    func bucketCount(_ index: Int) -> UInt64 { counts[index] }

    mutating func add(_ count: UInt64, toBucket index: Int) {
        counts[index] += count
        total += count
    }

    static func bucket(of value: UInt64) -> Int {
        if value < UInt64(subBuckets) { return Int(value) }
        let power = 63 - value.leadingZeroBitCount - 5  // value >> power is in 32..<64
        let index = (power + 1) * 32 + Int(value >> UInt64(power)) - 32
        return min(index, subBuckets * powers - 1)
    }

    static func upperEdge(of index: Int) -> UInt64 {
        if index < subBuckets { return UInt64(index) }
        let power = index / 32 - 1
        let mantissa = UInt64(index % 32 + 32)
        return ((mantissa + 1) << UInt64(power)) - 1
    }
}
