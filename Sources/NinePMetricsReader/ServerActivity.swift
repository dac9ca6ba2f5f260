/// What a ninepd did between two scrapes of its metrics endpoint: per operation and per client
/// rates and latencies, memory waits, and the totals. What `ninep top` shows.
public struct ServerActivity: Sendable {
    public struct Operation: Sendable {
        public var type: String
        public var total: Double
        public var perSecond: Double
        public var errorsPerSecond: Double
        /// Mean time from admission to reply over the interval (nil: no request in it).
        public var averageSeconds: Double?
        /// The upper bound of the bucket holding the 99th percentile over the interval.
        public var p99Seconds: Double?
    }

    public struct Client: Sendable {
        public var connection: String
        public var peer: String
        public var perSecond: Double
        public var errorsPerSecond: Double
        public var averageSeconds: Double?
        public var readBytesPerSecond: Double
        public var writtenBytesPerSecond: Double
        public var fids: Double
        public var inFlight: Double
        public var largeBuffers: Double
        public var smallBuffers: Double
    }

    public struct MemoryWait: Sendable {
        public var site: String
        public var waits: Double
        public var waitsPerSecond: Double
    }

    public var connections: Double
    public var refusedConnections: Double
    public var requestsPerSecond: Double
    public var readBytesPerSecond: Double
    public var writtenBytesPerSecond: Double
    /// Tflushes by outcome since start ("aborted", "after_reply", "not_in_flight").
    public var flushes: [String: Double]
    /// Busiest first.
    public var operations: [Operation]
    /// Busiest first.
    public var clients: [Client]
    public var memoryWaits: [MemoryWait]
    /// False when the endpoint has no request metrics (not a ninepd, or an old one).
    public var hasRequestMetrics: Bool

    /// `previous`: the scrape `seconds` before `current` (nil: rates are 0, totals shown).
    public init(previous: MetricSamples?, current: MetricSamples, seconds: Double) {
        let interval = max(seconds, 1e-3)
        func rate(_ name: String, _ labels: [String: String] = [:]) -> Double {
            guard let previous else { return 0 }
            return max(0, current.sum(name, labels) - previous.sum(name, labels)) / interval
        }
        func delta(_ name: String, _ labels: [String: String]) -> Double {
            guard let previous else { return current.sum(name, labels) }
            return max(0, current.sum(name, labels) - previous.sum(name, labels))
        }
        hasRequestMetrics = !current["ninep_requests_total"].isEmpty
        connections = current.sum("ninep_connections")
        refusedConnections = current.sum("ninep_connections_refused_total")
        requestsPerSecond = rate("ninep_requests_total")
        readBytesPerSecond = rate("ninep_read_bytes_total")
        writtenBytesPerSecond = rate("ninep_written_bytes_total")
        var flushes: [String: Double] = [:]
        for sample in current["ninep_flushes_total"] { flushes[sample.labels["outcome"] ?? "?", default: 0] += sample.value }
        self.flushes = flushes

        operations = current["ninep_requests_total"].compactMap { sample in
            guard let type = sample.labels["type"] else { return nil }
            let labels = ["type": type]
            let count = delta("ninep_request_duration_seconds_count", labels)
            let seconds = delta("ninep_request_duration_seconds_sum", labels)
            var p99: Double?
            if count > 0 {
                let buckets = current["ninep_request_duration_seconds_bucket"]
                    .filter { $0.labels["type"] == type }
                    .compactMap { bucket -> (bound: Double, count: Double)? in
                        guard let le = bucket.labels["le"], let bound = le == "+Inf" ? Double.infinity : Double(le) else { return nil }
                        return (bound, delta("ninep_request_duration_seconds_bucket", ["type": type, "le": le]))
                    }
                    .sorted { $0.bound < $1.bound }
                p99 = buckets.first { $0.count >= count * 0.99 }?.bound
            }
            return Operation(
                type: type, total: sample.value, perSecond: rate("ninep_requests_total", labels),
                errorsPerSecond: rate("ninep_request_errors_total", labels),
                averageSeconds: count > 0 ? seconds / count : nil, p99Seconds: p99)
        }
        .sorted { ($0.perSecond, $0.total) > ($1.perSecond, $1.total) }

        clients = current["ninep_client_requests_total"].compactMap { sample in
            guard let connection = sample.labels["connection"] else { return nil }
            let labels = ["connection": connection]
            // A client that connected since the previous scrape: its whole count is new.
            let isNew = previous?["ninep_client_requests_total"].contains { $0.labels["connection"] == connection } != true
            func clientRate(_ name: String) -> Double {
                guard previous != nil else { return 0 }
                let before = isNew ? 0 : previous!.sum(name, labels)
                return max(0, current.sum(name, labels) - before) / interval
            }
            let requests = clientRate("ninep_client_requests_total") * interval
            let seconds = clientRate("ninep_client_request_seconds_total") * interval
            return Client(
                connection: connection, peer: sample.labels["peer"] ?? "?",
                perSecond: clientRate("ninep_client_requests_total"), errorsPerSecond: clientRate("ninep_client_errors_total"),
                averageSeconds: requests > 0 ? seconds / requests : nil,
                readBytesPerSecond: clientRate("ninep_client_read_bytes_total"),
                writtenBytesPerSecond: clientRate("ninep_client_written_bytes_total"),
                fids: current.sum("ninep_client_fids", labels), inFlight: current.sum("ninep_client_requests_in_flight", labels),
                largeBuffers: current.sum("ninep_client_buffers", ["connection": connection, "pool": "large"]),
                smallBuffers: current.sum("ninep_client_buffers", ["connection": connection, "pool": "small"]))
        }
        .sorted { ($0.perSecond, $0.connection) > ($1.perSecond, $1.connection) }

        memoryWaits = current["ninep_memory_waits_total"].compactMap { sample in
            guard let site = sample.labels["site"] else { return nil }
            return MemoryWait(site: site, waits: sample.value, waitsPerSecond: rate("ninep_memory_waits_total", ["site": site]))
        }
        .sorted { $0.site < $1.site }
    }
}
