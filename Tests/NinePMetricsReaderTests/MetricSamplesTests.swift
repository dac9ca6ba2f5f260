import NinePMetricsReader
import Testing

@Suite struct MetricSamplesTests {
    @Test func parsesTheTextFormat() throws {
        let text = """
            # TYPE ninep_requests_total counter
            ninep_requests_total{type="walk"} 12
            ninep_requests_total{type="read"} 3
            ninep_connections 2.0

            ninep_client_requests_total{connection="7",peer="127.0.0.1:40000"} 15
            odd{label="a \\"quoted\\" \\\\ value",other="x"} +Inf
            ninep_request_duration_seconds_sum{type="read"} 9.8515e-05
            """
        let samples = try MetricSamples(parsing: text)
        #expect(samples.sum("ninep_requests_total") == 15)
        #expect(samples.sum("ninep_requests_total", ["type": "walk"]) == 12)
        #expect(samples.sum("ninep_connections") == 2)
        #expect(samples["ninep_client_requests_total"].first?.labels == ["connection": "7", "peer": "127.0.0.1:40000"])
        #expect(samples["odd"].first?.labels["label"] == "a \"quoted\" \\ value")
        #expect(samples["odd"].first?.value == .infinity)
        #expect(samples.sum("ninep_request_duration_seconds_sum") == 9.8515e-05)
        #expect(samples["missing"].isEmpty)
    }

    @Test func aLineThatIsNotASampleIsNamed() {
        #expect(throws: MetricSamples.ParseError.self) { try MetricSamples(parsing: "ok 1\n<html>not metrics</html>\n") }
        do {
            _ = try MetricSamples(parsing: "ok 1\nbroken{a=\"x\" 3\n")
            Issue.record("an unterminated label set was accepted")
        } catch {
            #expect(error.description.contains("line 2"), "\(error.description)")
        }
    }

    /// Rates over the interval, the mean and 99th-percentile latency from bucket differences,
    /// and clients that connected since the previous scrape counted from zero.
    @Test func activityBetweenTwoScrapes() throws {
        let before = try MetricSamples(parsing: """
            ninep_requests_total{type="read"} 100
            ninep_request_errors_total{type="read"} 0
            ninep_request_duration_seconds_count{type="read"} 100
            ninep_request_duration_seconds_sum{type="read"} 0.1
            ninep_request_duration_seconds_bucket{type="read",le="0.001"} 100
            ninep_request_duration_seconds_bucket{type="read",le="0.01"} 100
            ninep_request_duration_seconds_bucket{type="read",le="+Inf"} 100
            ninep_read_bytes_total 1000
            ninep_client_requests_total{connection="1",peer="a"} 100
            ninep_client_request_seconds_total{connection="1",peer="a"} 0.1
            """)
        let after = try MetricSamples(parsing: """
            ninep_requests_total{type="read"} 300
            ninep_request_errors_total{type="read"} 10
            ninep_request_duration_seconds_count{type="read"} 300
            ninep_request_duration_seconds_sum{type="read"} 0.5
            ninep_request_duration_seconds_bucket{type="read",le="0.001"} 297
            ninep_request_duration_seconds_bucket{type="read",le="0.01"} 299
            ninep_request_duration_seconds_bucket{type="read",le="+Inf"} 300
            ninep_read_bytes_total 5000
            ninep_connections 2
            ninep_client_requests_total{connection="1",peer="a"} 300
            ninep_client_request_seconds_total{connection="1",peer="a"} 0.5
            ninep_client_requests_total{connection="2",peer="b"} 40
            ninep_client_fids{connection="2",peer="b"} 3
            """)
        let activity = ServerActivity(previous: before, current: after, seconds: 2)
        #expect(activity.requestsPerSecond == 100)
        #expect(activity.readBytesPerSecond == 2000)
        let read = try #require(activity.operations.first { $0.type == "read" })
        #expect(read.perSecond == 100 && read.errorsPerSecond == 5 && read.total == 300)
        #expect(abs((read.averageSeconds ?? 0) - 0.002) < 1e-9)
        #expect(read.p99Seconds == 0.01)  // 197 of 200 under 1 ms: the 99th is in the next bucket
        #expect(activity.clients.map(\.connection) == ["1", "2"])
        #expect(activity.clients[0].perSecond == 100)
        #expect(activity.clients[1].perSecond == 20, "a new client's whole count is its rate")
        #expect(activity.clients[1].fids == 3)
        #expect(activity.connections == 2)
    }
}
