import Glibc
import Metrics
import MetricsTestKit
import NinePTestSupport
import NinePWire
import Testing

@_spi(Benchmarks) @testable import NinePServer

/// The request metrics (`ServerConfiguration.requestMetrics`, published by `publishMetrics`)
/// count exactly what a client did: requests and errors per type, errnos, bytes, latency
/// buckets, Tflush outcomes, and per-connection series that end with their connection.
@Suite struct RequestMetricsTests {
    private static func counter(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)] = []) throws -> Int64 {
        try metrics.expectCounter(label, dimensions).totalValue
    }

    @Test func countsMatchWhatTheClientDid() throws {
        let metrics = TestMetrics()
        let s = try TestServer(metrics: metrics)
        defer { s.shutdown() }
        let c = try s.session()  // Tversion, Tattach
        #expect(errnoOf { try c.walk(0, 1, ["missing"]) } == LinuxErrno.ENOENT)
        _ = try c.walk(0, 1, [])
        _ = try c.lcreate(1, "f.dat")
        #expect(try c.write(1, offset: 0, [UInt8](repeating: 7, count: 1000)) == 1000)
        #expect(try c.read(1, offset: 0, count: 4096).count == 1000)
        #expect(try c.read(1, offset: 1000, count: 4096).isEmpty)
        try c.clunk(1)
        s.server.publishMetrics()

        let expected: [(String, Int64)] = [("version", 1), ("attach", 1), ("walk", 2), ("lcreate", 1), ("write", 1), ("read", 2), ("clunk", 1)]
        for (type, count) in expected {
            #expect(try Self.counter(metrics, "ninep_requests_total", [("type", type)]) == count, "T\(type)")
            #expect(try Self.counter(metrics, "ninep_request_duration_seconds_count", [("type", type)]) == count, "T\(type)")
            #expect(try Self.counter(metrics, "ninep_request_duration_seconds_bucket", [("type", type), ("le", "+Inf")]) == count, "T\(type)")
        }
        #expect(try Self.counter(metrics, "ninep_request_errors_total", [("type", "walk")]) == 1)
        #expect(try Self.counter(metrics, "ninep_request_errors_total", [("type", "read")]) == 0)
        #expect(try Self.counter(metrics, "ninep_errors_total", [("errno", "ENOENT")]) == 1)
        #expect(try Self.counter(metrics, "ninep_read_bytes_total") == 1000)
        #expect(try Self.counter(metrics, "ninep_written_bytes_total") == 1000)
        #expect(try Self.counter(metrics, "ninep_connections_accepted_total") == 1)
        // Buckets are cumulative: each holds at least the one below it.
        var below: Int64 = 0
        for index in 0..<(RequestStatistics.bucketCount - 1) {
            let bound = RequestMetrics.secondsLabel(RequestStatistics.bucketUpperBoundSeconds(index)!)
            let value = try Self.counter(metrics, "ninep_request_duration_seconds_bucket", [("type", "walk"), ("le", bound)])
            #expect(value >= below, "bucket le=\(bound) holds \(value), less than the \(below) below it")
            below = value
        }

        // This connection's own series.
        let share = try #require(s.server.connectionShares().first)
        let connection = [("connection", "\(share.id)"), ("peer", share.peer)]
        #expect(try Self.counter(metrics, "ninep_client_requests_total", connection) == 9)
        #expect(try Self.counter(metrics, "ninep_client_errors_total", connection) == 1)
        #expect(try Self.counter(metrics, "ninep_client_read_bytes_total", connection) == 1000)
        #expect(try metrics.expectGauge("ninep_client_fids", connection).lastValue == 1)
        #expect(try metrics.expectGauge("ninep_connections").lastValue == 1)

        // The session ends: its series go, its counts stay in the totals, and the next
        // client's add to them.
        c.close()
        #expect(waitUntil(within: .seconds(10)) { s.server.connectionCount == 0 }, "the server kept the closed connection")
        s.server.publishMetrics()
        #expect(throws: (any Error).self, "the closed connection's series is still there") {
            try Self.counter(metrics, "ninep_client_requests_total", connection)
        }
        #expect(try metrics.expectGauge("ninep_connections").lastValue == 0)
        let next = try s.session()
        try next.clunk(0)
        s.server.publishMetrics()
        #expect(try Self.counter(metrics, "ninep_requests_total", [("type", "version")]) == 2)
        #expect(try Self.counter(metrics, "ninep_requests_total", [("type", "clunk")]) == 2)
        #expect(try Self.counter(metrics, "ninep_requests_total", [("type", "walk")]) == 2)
        #expect(try Self.counter(metrics, "ninep_connections_accepted_total") == 2)
    }

    /// A Tflush that aborts a parked request, one of a tag not in flight, and one of a request
    /// already running (reply first) are each counted under their outcome.
    @Test func flushOutcomesAreCounted() throws {
        let metrics = TestMetrics()
        let s = try TestServer(metrics: metrics)
        defer { s.shutdown() }
        #expect(mkfifo(s("fifo"), 0o666) == 0)
        let c = try s.session()
        _ = try c.walk(0, 1, ["fifo"])
        _ = try c.lopen(1, OpenFlags.readWrite)
        #expect(c.send(.read(fid: 1, offset: 0, count: 100), tag: 10))
        c.expectNothing(milliseconds: 100, "a Tread of an empty FIFO answered")
        #expect(c.send(.flush(oldtag: 10), tag: 11))
        guard case .flush = try c.reply(tag: 11) else { Issue.record("no Rflush"); return }
        #expect(c.send(.flush(oldtag: 99), tag: 12))
        guard case .flush = try c.reply(tag: 12) else { Issue.record("no Rflush of a free tag"); return }
        s.server.publishMetrics()
        #expect(try Self.counter(metrics, "ninep_flushes_total", [("outcome", "aborted")]) == 1)
        #expect(try Self.counter(metrics, "ninep_flushes_total", [("outcome", "not_in_flight")]) == 1)
        #expect(try Self.counter(metrics, "ninep_flushes_total", [("outcome", "after_reply")]) == 0)
        #expect(try Self.counter(metrics, "ninep_requests_total", [("type", "flush")]) == 2)
        // The aborted read is counted as a read, with no error.
        #expect(try Self.counter(metrics, "ninep_requests_total", [("type", "read")]) == 1)
        #expect(try Self.counter(metrics, "ninep_request_errors_total", [("type", "read")]) == 0)

        let memoryMetrics = TestMetrics()
        let m = try InMemoryServer(metrics: memoryMetrics)
        m.fs.addFile("file.txt", contents: Array("hello".utf8))
        let d = try m.session()
        _ = try d.walk(0, 1, ["file.txt"])
        _ = try d.lopen(1, OpenFlags.readOnly)
        let gate = m.fs.faults.block(.read)
        #expect(d.send(.read(fid: 1, offset: 0, count: 100), tag: 20))
        #expect(gate.waitForArrival(), "the read never reached the backend")
        #expect(d.send(.flush(oldtag: 20), tag: 21))
        // The reader takes frames in order: once the Rflush of a free tag sent after it is
        // back, the Tflush of the blocked read is held by the server, and the gate may open.
        #expect(d.send(.flush(oldtag: 99), tag: 22))
        guard case .flush = try d.reply(tag: 22) else { Issue.record("no Rflush of a free tag"); return }
        gate.open()
        guard case .message = d.receive(), case .message = d.receive() else { Issue.record("no reply and Rflush"); return }
        m.server.publishMetrics()
        #expect(try Self.counter(memoryMetrics, "ninep_flushes_total", [("outcome", "after_reply")]) == 1)
        #expect(try Self.counter(memoryMetrics, "ninep_flushes_total", [("outcome", "not_in_flight")]) == 1)
        #expect(try Self.counter(memoryMetrics, "ninep_read_bytes_total") == 5)
    }

    @Test func latencyBucketsFollowPrometheusLe() {
        #expect(RequestStatistics.bucket(nanoseconds: 0) == 0)
        #expect(RequestStatistics.bucket(nanoseconds: 8_000) == 0)  // le is inclusive
        #expect(RequestStatistics.bucket(nanoseconds: 8_001) == 1)
        #expect(RequestStatistics.bucket(nanoseconds: 16_000) == 1)
        #expect(RequestStatistics.bucket(nanoseconds: 16_001) == 2)
        #expect(RequestStatistics.bucket(nanoseconds: 1_000_000) == 7)  // le 1.024 ms
        #expect(RequestStatistics.bucket(nanoseconds: 60_000_000_000) == RequestStatistics.bucketCount - 1)
        #expect(RequestMetrics.secondsLabel(RequestStatistics.bucketUpperBoundSeconds(0)!) == "0.000008")
        #expect(RequestMetrics.secondsLabel(RequestStatistics.bucketUpperBoundSeconds(19)!) == "4.194304")
        #expect(RequestStatistics.bucketUpperBoundSeconds(RequestStatistics.bucketCount - 1) == nil)
        #expect(RequestMetrics.errnoName(2) == "ENOENT")
        #expect(RequestMetrics.typeName(Int(MessageType.twalk.rawValue >> 1)) == "walk")
    }
}
