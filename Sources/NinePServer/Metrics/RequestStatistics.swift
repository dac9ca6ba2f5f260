import CNinePShims
import Glibc
import NinePWire

/// What one connection's requests did: counts, errors, latencies and bytes, per message type.
/// Written by whichever thread answers a request (`ServerConnection.respond`) with relaxed
/// atomic adds: no lock, no allocation, and no contention between connections, since each
/// connection slot has its own. The metrics publisher reads them with atomic loads and adds
/// the counts of connections that ended (`retired`) to the server's totals.
///
/// One allocation, made with the connection slot, only when the server collects request
/// metrics (`ServerConfiguration.requestMetrics`).
@_spi(Benchmarks)
public final class RequestStatistics: @unchecked Sendable {
    // @unchecked Sendable: `counters` is fixed for the object's life and every access to it
    // goes through the atomic shims (ninep_counter_add/load/store).

    /// A type's slot is its number / 2: 9P2000.L's T-messages are even numbers below 128,
    /// localio's lie at 180 and above (docs/LOCALIO.md), so every type byte has a slot.
    static let typeSlots = 128
    /// Latency buckets, upper bounds 8 µs × 2^k for k in 0..<bucketCount-1 (8 µs to 4.2 s),
    /// and a last one for everything longer.
    static let bucketCount = 21
    static let firstBucketNanoseconds: UInt64 = 8_000
    /// Linux errnos are below 134; anything else is counted in the last slot.
    static let errnoSlots = 134

    /// How a Tflush ended for the request it named.
    enum FlushOutcome: Int, CaseIterable {
        /// The request had changed nothing yet: it was aborted and sent no reply.
        case aborted
        /// The request ran to its end: its reply went out, then the Rflush.
        case answeredAfterReply
        /// No request had the tag: the Rflush went out at once.
        case notInFlight
    }

    // Layout of `counters`.
    private static let requestsBase = 0
    private static let errorsBase = requestsBase + typeSlots
    private static let nanosecondsBase = errorsBase + typeSlots
    private static let bucketsBase = nanosecondsBase + typeSlots
    private static let errnosBase = bucketsBase + typeSlots * bucketCount
    private static let bytesReadIndex = errnosBase + errnoSlots
    private static let bytesWrittenIndex = bytesReadIndex + 1
    private static let flushesBase = bytesWrittenIndex + 1
    private static let localIOBase = flushesBase + FlushOutcome.allCases.count
    static let counterCount = localIOBase + LocalIOOutcome.allCases.count

    private let counters: UnsafeMutablePointer<UInt64>

    public init() {
        counters = .allocate(capacity: Self.counterCount)
        counters.initialize(repeating: 0, count: Self.counterCount)
    }

    deinit { counters.deallocate() }

    /// The bucket whose upper bound is the first at or above `nanoseconds` (Prometheus' `le`).
    static func bucket(nanoseconds: UInt64) -> Int {
        // Whole 8 µs units below the value: 0 up to 8 µs, 1 up to 16 µs, 2 or 3 up to 32 µs...
        let units = nanoseconds == 0 ? 0 : (nanoseconds - 1) / firstBucketNanoseconds
        if units == 0 { return 0 }
        // units in [2^(k-1), 2^k) lies in bucket k (upper bound 8 µs × 2^k).
        return min(bucketCount - 1, 64 - units.leadingZeroBitCount)
    }

    /// Upper bound of bucket `index` in seconds (nil: the last, unbounded one).
    static func bucketUpperBoundSeconds(_ index: Int) -> Double? {
        index == bucketCount - 1 ? nil : Double(firstBucketNanoseconds << UInt64(index)) / 1e9
    }

    @inline(__always) private func add(_ index: Int, _ value: UInt64) {
        ninep_counter_add(counters + index, value)
    }

    @inline(__always) func load(_ index: Int) -> UInt64 { ninep_counter_load(counters + index) }

    /// One answered (or aborted) request. `reply`: the frame as it goes out (nil when none is
    /// sent); its type tells an Rlerror (and its errno), an Rread and an Rwrite (their counts).
    @inline(__always)
    public func recordRequest(type: UInt8, nanoseconds: UInt64, reply: UnsafeRawBufferPointer?) {
        let slot = Int(type >> 1)
        add(Self.requestsBase + slot, 1)
        add(Self.nanosecondsBase + slot, nanoseconds)
        add(Self.bucketsBase + slot * Self.bucketCount + Self.bucket(nanoseconds: nanoseconds), 1)
        guard let reply, reply.count >= NineP.headerSize + 4 else { return }
        let value = UInt64(reply.loadUnaligned(fromByteOffset: NineP.headerSize, as: UInt32.self).littleEndian)
        switch reply[4] {
        case MessageType.rlerror.rawValue:
            add(Self.errorsBase + slot, 1)
            add(Self.errnosBase + min(Int(value), Self.errnoSlots - 1), 1)
        case MessageType.rread.rawValue:
            add(Self.bytesReadIndex, value)
        case MessageType.rwrite.rawValue:
            add(Self.bytesWrittenIndex, value)
        default:
            break
        }
    }

    /// A request answered where it was read (Tversion, Tflush): counted, with its latency.
    @inline(__always)
    func recordInline(type: MessageType, nanoseconds: UInt64) {
        recordRequest(type: type.rawValue, nanoseconds: nanoseconds, reply: nil)
    }

    /// One localio proof or grant answered (docs/LOCALIO.md).
    @inline(__always)
    func recordLocalIO(_ outcome: LocalIOOutcome) {
        add(Self.localIOBase + outcome.rawValue, 1)
    }

    @inline(__always)
    func recordFlushes(_ outcome: FlushOutcome, count: Int) {
        if count > 0 { add(Self.flushesBase + outcome.rawValue, UInt64(count)) }
    }

    // MARK: Reading (the publisher)

    func requests(typeSlot: Int) -> UInt64 { load(Self.requestsBase + typeSlot) }
    func errors(typeSlot: Int) -> UInt64 { load(Self.errorsBase + typeSlot) }
    func nanoseconds(typeSlot: Int) -> UInt64 { load(Self.nanosecondsBase + typeSlot) }
    func bucket(typeSlot: Int, _ index: Int) -> UInt64 { load(Self.bucketsBase + typeSlot * Self.bucketCount + index) }
    func errors(errno: Int) -> UInt64 { load(Self.errnosBase + errno) }
    var bytesRead: UInt64 { load(Self.bytesReadIndex) }
    var bytesWritten: UInt64 { load(Self.bytesWrittenIndex) }
    func flushes(_ outcome: FlushOutcome) -> UInt64 { load(Self.flushesBase + outcome.rawValue) }
    func localIO(_ outcome: LocalIOOutcome) -> UInt64 { load(Self.localIOBase + outcome.rawValue) }

    /// Every request of every type.
    public var totalRequests: UInt64 {
        var total: UInt64 = 0
        for slot in 0..<Self.typeSlots { total &+= requests(typeSlot: slot) }
        return total
    }

    /// Every request's time, nanoseconds.
    var totalNanoseconds: UInt64 {
        var total: UInt64 = 0
        for slot in 0..<Self.typeSlots { total &+= nanoseconds(typeSlot: slot) }
        return total
    }

    var totalErrors: UInt64 {
        var total: UInt64 = 0
        for slot in 0..<Self.typeSlots { total &+= errors(typeSlot: slot) }
        return total
    }

    /// Adds every counter of `other` into this one's and, when `zeroing`, zeroes `other` (the
    /// publisher: totals of a moment, and the counts of a connection that ended, before its
    /// slot serves another client).
    func add(_ other: RequestStatistics, zeroing: Bool = false) {
        for index in 0..<Self.counterCount {
            let value = other.load(index)
            if value != 0 {
                add(index, value)
                if zeroing { ninep_counter_store(other.counters + index, 0) }
            }
        }
    }

    func reset() {
        for index in 0..<Self.counterCount { ninep_counter_store(counters + index, 0) }
    }
}

/// The nanoseconds of CLOCK_MONOTONIC (a vDSO call: no system call, no allocation).
@_spi(Benchmarks)
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}
