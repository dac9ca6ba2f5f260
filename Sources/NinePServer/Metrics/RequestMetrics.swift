import CNinePShims
import Metrics
import NinePWire

/// Publishes the request statistics into swift-metrics: per message type the requests, the
/// errors and the latency distribution; errors by errno; bytes read and written; how Tflushes
/// ended; and per connection its requests, time, bytes, fids and buffers in use.
///
/// Runs only on the publishing side (a scrape asking for fresh figures, through
/// `FileServer.publishMetrics`), under the server's `metricsLock`: the request path only adds to atomic counters
/// (`RequestStatistics`), so a metrics backend that locks or allocates never slows a request.
///
/// The latency distribution is published as cumulative counters with an `le` label
/// (`ninep_request_duration_seconds_bucket`), plus `_count` and `_sum`, which is what PromQL's
/// `histogram_quantile` reads. A swift-metrics timer would have to be fed one sample at a time
/// under a lock; the counts are already bucketed, exactly, on the request path.
final class RequestMetrics: @unchecked Sendable {
    // @unchecked Sendable: every member is touched only under the owning server's
    // `metricsLock` (documented contract of `publish`).
    private let factory: any MetricsFactory
    /// This publish's totals and the previous one's: counters are pushed as differences.
    private let now = RequestStatistics()
    private let last = RequestStatistics()
    private var requestCounters = [Counter?](repeating: nil, count: RequestStatistics.typeSlots)
    private var errorCounters = [Counter?](repeating: nil, count: RequestStatistics.typeSlots)
    private var bucketCounters = [[Counter]?](repeating: nil, count: RequestStatistics.typeSlots)
    private var durationCounts = [Counter?](repeating: nil, count: RequestStatistics.typeSlots)
    private var durationSums = [FloatingPointCounter?](repeating: nil, count: RequestStatistics.typeSlots)
    private var errnoCounters = [Counter?](repeating: nil, count: RequestStatistics.errnoSlots)
    private let bytesRead: Counter
    private let bytesWritten: Counter
    private let flushes: [Counter]
    private let localIO: [Counter]
    private let connections: Gauge
    private let accepted: Counter
    private let refused: Counter
    private let fids: Gauge
    private var lastAccepted = 0
    private var lastRefused = 0
    private var perConnection: [Int: ConnectionSeries] = [:]

    init(factory: any MetricsFactory) {
        self.factory = factory
        bytesRead = Counter(label: "ninep_read_bytes_total", factory: factory)
        bytesWritten = Counter(label: "ninep_written_bytes_total", factory: factory)
        flushes = RequestStatistics.FlushOutcome.allCases.map {
            Counter(label: "ninep_flushes_total", dimensions: [("outcome", $0.label)], factory: factory)
        }
        localIO = RequestStatistics.LocalIOOutcome.allCases.map { $0.counter(factory) }
        connections = Gauge(label: "ninep_connections", factory: factory)
        accepted = Counter(label: "ninep_connections_accepted_total", factory: factory)
        refused = Counter(label: "ninep_connections_refused_total", factory: factory)
        fids = Gauge(label: "ninep_fids", factory: factory)
    }

    /// What the publisher reads of one open connection.
    struct ConnectionView {
        var share: ServerConnectionShare
        var statistics: RequestStatistics
    }

    /// Pushes what changed since the last call. `retired`: the counts of connections that
    /// ended; `open`: the connections open now.
    func publish(retired: RequestStatistics, open: [ConnectionView], accepted acceptedNow: Int, refused refusedNow: Int) {
        now.reset()
        now.add(retired)
        for connection in open { now.add(connection.statistics) }
        publishTypes()
        for errno in 0..<RequestStatistics.errnoSlots {
            let delta = now.errors(errno: errno) &- last.errors(errno: errno)
            guard delta > 0 else { continue }
            if errnoCounters[errno] == nil {
                errnoCounters[errno] = Counter(label: "ninep_errors_total", dimensions: [("errno", Self.errnoName(errno))], factory: factory)
            }
            errnoCounters[errno]!.increment(by: Int64(clamping: delta))
        }
        increment(bytesRead, now.bytesRead, last.bytesRead)
        increment(bytesWritten, now.bytesWritten, last.bytesWritten)
        for outcome in RequestStatistics.FlushOutcome.allCases {
            increment(flushes[outcome.rawValue], now.flushes(outcome), last.flushes(outcome))
        }
        for outcome in RequestStatistics.LocalIOOutcome.allCases {
            increment(localIO[outcome.rawValue], now.localIO(outcome), last.localIO(outcome))
        }
        last.reset()
        last.add(now)

        connections.record(open.count)
        accepted.increment(by: Int64(acceptedNow - lastAccepted))
        refused.increment(by: Int64(refusedNow - lastRefused))
        (lastAccepted, lastRefused) = (acceptedNow, refusedNow)
        fids.record(open.reduce(0) { $0 + $1.share.fids })
        publishConnections(open)
    }

    private func publishTypes() {
        for slot in 0..<RequestStatistics.typeSlots {
            let count = now.requests(typeSlot: slot)
            guard count > last.requests(typeSlot: slot) else { continue }
            let type = Self.typeName(slot)
            if requestCounters[slot] == nil {
                let dimensions = [("type", type)]
                requestCounters[slot] = Counter(label: "ninep_requests_total", dimensions: dimensions, factory: factory)
                errorCounters[slot] = Counter(label: "ninep_request_errors_total", dimensions: dimensions, factory: factory)
                durationCounts[slot] = Counter(label: "ninep_request_duration_seconds_count", dimensions: dimensions, factory: factory)
                durationSums[slot] = FloatingPointCounter(label: "ninep_request_duration_seconds_sum", dimensions: dimensions, factory: factory)
                bucketCounters[slot] = (0..<RequestStatistics.bucketCount).map { index in
                    let bound = RequestStatistics.bucketUpperBoundSeconds(index).map(Self.secondsLabel) ?? "+Inf"
                    return Counter(label: "ninep_request_duration_seconds_bucket", dimensions: [("type", type), ("le", bound)], factory: factory)
                }
            }
            increment(requestCounters[slot]!, count, last.requests(typeSlot: slot))
            increment(durationCounts[slot]!, count, last.requests(typeSlot: slot))
            increment(errorCounters[slot]!, now.errors(typeSlot: slot), last.errors(typeSlot: slot))
            let nanoseconds = now.nanoseconds(typeSlot: slot) &- last.nanoseconds(typeSlot: slot)
            durationSums[slot]!.increment(by: Double(nanoseconds) / 1e9)
            // Cumulative, as Prometheus buckets are: each counts every request at or below it.
            var cumulativeNow: UInt64 = 0
            var cumulativeLast: UInt64 = 0
            for index in 0..<RequestStatistics.bucketCount {
                cumulativeNow &+= now.bucket(typeSlot: slot, index)
                cumulativeLast &+= last.bucket(typeSlot: slot, index)
                increment(bucketCounters[slot]![index], cumulativeNow, cumulativeLast)
            }
        }
    }

    private func publishConnections(_ open: [ConnectionView]) {
        var seen = Set<Int>()
        for connection in open {
            let id = connection.share.id
            seen.insert(id)
            let series = perConnection[id] ?? ConnectionSeries(share: connection.share, factory: factory)
            perConnection[id] = series
            series.publish(connection)
        }
        for (id, series) in perConnection where !seen.contains(id) {
            series.destroy()
            perConnection[id] = nil
        }
    }

    private func increment(_ counter: Counter, _ now: UInt64, _ last: UInt64) {
        if now > last { counter.increment(by: Int64(clamping: now - last)) }
    }

    /// "walk" for Twalk's slot; the number for a type ninepd does not know.
    static func typeName(_ slot: Int) -> String {
        guard let type = MessageType(rawValue: UInt8(slot << 1)) else { return "type\(slot << 1)" }
        return String(String(describing: type).dropFirst())
    }

    /// "ENOENT" for 2 (glibc's name), the number when it has none.
    static func errnoName(_ errno: Int) -> String {
        guard errno < RequestStatistics.errnoSlots - 1 else { return "other" }
        guard let name = ninep_errno_name(Int32(errno)) else { return "\(errno)" }
        return String(cString: name)
    }

    /// Seconds from nanoseconds as a plain decimal ("0.000008", "1.048576").
    static func secondsLabel(_ seconds: Double) -> String {
        let nanoseconds = UInt64((seconds * 1e9).rounded())
        var fraction = String(nanoseconds % 1_000_000_000)
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(nanoseconds / 1_000_000_000)" + (fraction.isEmpty ? "" : "." + fraction)
    }
}

extension RequestStatistics.FlushOutcome {
    var label: String {
        switch self {
        case .aborted: "aborted"
        case .answeredAfterReply: "after_reply"
        case .notInFlight: "not_in_flight"
        }
    }
}

/// One open connection's series, labelled with its id and peer; destroyed when it closes.
private final class ConnectionSeries {
    let requests: Counter
    let errors: Counter
    let seconds: FloatingPointCounter
    let readBytes: Counter
    let writtenBytes: Counter
    let fids: Gauge
    let inFlight: Gauge
    let unsentReplies: Gauge
    let largeBuffers: Gauge
    let smallBuffers: Gauge
    var last = (requests: UInt64(0), errors: UInt64(0), nanoseconds: UInt64(0), read: UInt64(0), written: UInt64(0))

    init(share: ServerConnectionShare, factory: any MetricsFactory) {
        let dimensions = [("connection", "\(share.id)"), ("peer", share.peer)]
        requests = Counter(label: "ninep_client_requests_total", dimensions: dimensions, factory: factory)
        errors = Counter(label: "ninep_client_errors_total", dimensions: dimensions, factory: factory)
        seconds = FloatingPointCounter(label: "ninep_client_request_seconds_total", dimensions: dimensions, factory: factory)
        readBytes = Counter(label: "ninep_client_read_bytes_total", dimensions: dimensions, factory: factory)
        writtenBytes = Counter(label: "ninep_client_written_bytes_total", dimensions: dimensions, factory: factory)
        fids = Gauge(label: "ninep_client_fids", dimensions: dimensions, factory: factory)
        inFlight = Gauge(label: "ninep_client_requests_in_flight", dimensions: dimensions, factory: factory)
        unsentReplies = Gauge(label: "ninep_client_unsent_replies", dimensions: dimensions, factory: factory)
        largeBuffers = Gauge(label: "ninep_client_buffers", dimensions: dimensions + [("pool", "large")], factory: factory)
        smallBuffers = Gauge(label: "ninep_client_buffers", dimensions: dimensions + [("pool", "small")], factory: factory)
    }

    func publish(_ view: RequestMetrics.ConnectionView) {
        let statistics = view.statistics
        let current = (statistics.totalRequests, statistics.totalErrors, statistics.totalNanoseconds, statistics.bytesRead, statistics.bytesWritten)
        if current.0 > last.requests { requests.increment(by: Int64(clamping: current.0 - last.requests)) }
        if current.1 > last.errors { errors.increment(by: Int64(clamping: current.1 - last.errors)) }
        if current.2 > last.nanoseconds { seconds.increment(by: Double(current.2 - last.nanoseconds) / 1e9) }
        if current.3 > last.read { readBytes.increment(by: Int64(clamping: current.3 - last.read)) }
        if current.4 > last.written { writtenBytes.increment(by: Int64(clamping: current.4 - last.written)) }
        last = current
        fids.record(view.share.fids)
        inFlight.record(view.share.requestsInFlight)
        unsentReplies.record(view.share.unsentReplies)
        largeBuffers.record(view.share.largeBuffers)
        smallBuffers.record(view.share.smallBuffers)
    }

    func destroy() {
        requests.destroy()
        errors.destroy()
        seconds.destroy()
        readBytes.destroy()
        writtenBytes.destroy()
        fids.destroy()
        inFlight.destroy()
        unsentReplies.destroy()
        largeBuffers.destroy()
        smallBuffers.destroy()
    }
}
