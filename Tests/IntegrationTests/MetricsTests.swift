import Foundation
import NinePMetricsReader
import NinePTestSupport
import NinePTransport
import Testing

/// ninepd's metrics endpoint as an operator uses it: scraped by a real Prometheus server
/// (Debian's `prometheus`), and watched with `ninep top` in a terminal (tmux).
@Suite(.serialized)
struct MetricsTests {
    static var ninep: String { NinepCommandTests.ninep }

    /// A Prometheus server scraping ninepd every second stores the series, and their values are
    /// what the clients did: bytes of a put and a cat, one Tversion and Tattach per command, and
    /// per request type exactly the requests ninepd's own trace log shows it answered.
    @Test func prometheusScrapesWhatTheClientsDid() async throws {
        let root = try Paths.temporaryDirectory("ninep-prometheus")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        let metricsPort = try freeLoopbackPort()
        let server = try NinepdProcess(
            export: export, extraArguments: ["--metrics-listen", "tcp:127.0.0.1:\(metricsPort)", "--log-level", "trace"], logDirectory: root)
        defer { _ = server.stop() }
        let prometheus = try PrometheusProcess(directory: root, target: "127.0.0.1:\(metricsPort)")
        defer { prometheus.stop() }
        #expect(try await prometheus.waitFor("up{job=\"ninepd\"}", 1), "Prometheus never scraped ninepd: \(prometheus.logText.suffix(2000))")

        let local = root.appendingPathComponent("data.bin")
        let size = 300_000
        try Data((0..<size).map { UInt8(ascii: "a") + UInt8($0 % 26) }).write(to: local)  // ASCII: cat's output is read as text
        let address = ["--server", "127.0.0.1:\(server.port)"]
        #expect(try run(Self.ninep, ["put", local.path, "/data.bin"] + address).status == 0)
        let cat = try run(Self.ninep, ["cat", "/data.bin"] + address)
        #expect(cat.status == 0 && cat.output.utf8.count == size, "cat: status \(cat.status), \(cat.output.utf8.count) bytes")
        #expect(try run(Self.ninep, ["stat", "/missing"] + address).status == 1)
        #expect(try run(Self.ninep, ["ls", "/"] + address).status == 0)

        // Once a scrape after the last command has landed, Prometheus holds the final counts.
        #expect(try await prometheus.waitFor("ninep_written_bytes_total", Double(size)), "written bytes never reached \(size)")
        // (not ninep_connections_accepted_total: the test's wait for the 9P listener connects too)
        #expect(try await prometheus.waitFor("ninep_requests_total{type=\"attach\"}", 4))
        try await Task.sleep(for: .seconds(2.5))  // two more scrapes: the counts are settled
        #expect(try await prometheus.value("ninep_read_bytes_total") == Double(size))
        #expect(try await prometheus.value("ninep_requests_total{type=\"version\"}") == 4)
        #expect(try await prometheus.value("ninep_requests_total{type=\"attach\"}") == 4)
        #expect(try await prometheus.value("ninep_connections") == 0)
        #expect(try await prometheus.value("sum(ninep_request_duration_seconds_count)") == prometheus.value("sum(ninep_requests_total)"))
        #expect(try await prometheus.value("ninep_memory_grants_total{site=\"small-request\"}") ?? 0 > 0)
        let p99 = try await prometheus.value("histogram_quantile(0.99, ninep_request_duration_seconds_bucket{type=\"walk\"})")
        #expect(p99 != nil && p99! > 0 && p99!.isFinite, "histogram_quantile of walk latency: \(String(describing: p99))")

        // Every family has a HELP line an operator reads (in the exposition, and as
        // Prometheus stores it for its UI and its metadata API).
        let exposition = try await MetricsFetch.get(.tcp(host: "127.0.0.1", port: metricsPort), path: "/metrics")
        let lines = exposition.split(separator: "\n", omittingEmptySubsequences: false)
        var families = 0
        for (index, line) in lines.enumerated() where line.hasPrefix("# TYPE ") {
            families += 1
            let name = line.dropFirst("# TYPE ".count).prefix { $0 != " " }
            let help = index > 0 ? lines[index - 1] : ""
            #expect(help.hasPrefix("# HELP \(name) ") && help.count > "# HELP \(name) ".count + 10, "\(name) has no HELP line (add it to Sources/ninepd/MetricHelp.swift)")
        }
        #expect(families >= 20, "only \(families) families in the exposition")
        let metadata = try await MetricsFetch.get(.tcp(host: "127.0.0.1", port: prometheus.port), path: "/api/v1/metadata?metric=ninep_requests_total")
        #expect(metadata.contains("9P requests answered"), "Prometheus stored no help for ninep_requests_total: \(metadata.prefix(400))")

        // Per type, what ninepd's trace says it answered (one line per request; Tversion logs
        // its own line) is what Prometheus stored, and so are the errors by errno.
        #expect(server.stop() == 0)
        let (answered, enoent) = Self.traceCounts(server.logText)
        #expect(answered["walk", default: 0] >= 4 && enoent >= 1, "the trace shows too little: \(answered), ENOENT \(enoent)")
        for (type, count) in answered {
            let stored = try await prometheus.value("ninep_requests_total{type=\"\(type)\"}")
            #expect(stored == Double(count), "T\(type): ninepd answered \(count), Prometheus holds \(String(describing: stored))")
        }
        #expect(try await prometheus.value("ninep_errors_total{errno=\"ENOENT\"}") == Double(enoent))
        print("Prometheus scraped ninepd: \(answered.values.reduce(0, +)) requests by type \(answered.sorted { $0.key < $1.key }), \(enoent) ENOENT, walk p99 <= \(p99 ?? -1) s")
    }

    /// Requests per type in a trace log ("[NinePServer] walk(fid: ...) -> ...", "Tversion: ..."),
    /// and how many were answered with ENOENT.
    static func traceCounts(_ log: String) -> (answered: [String: Int], enoent: Int) {
        var answered: [String: Int] = [:]
        var enoent = 0
        for line in log.split(separator: "\n") {
            if line.contains("Tversion: msize") {
                answered["version", default: 0] += 1
                continue
            }
            guard let marker = line.range(of: "[NinePServer] "), line.contains(" -> ") else { continue }
            let type = line[marker.upperBound...].prefix { $0.isLetter }
            answered[String(type), default: 0] += 1
            if line.hasSuffix("-> Rlerror(2)") { enoent += 1 }
        }
        return (answered, enoent)
    }

    /// `ninep top` in a terminal (tmux) against a ninepd under load shows the client and its
    /// operation with a non-zero rate, and quits on q; `--once` prints the same tables, and an
    /// endpoint that does not answer is an error naming it.
    @Test func topShowsTheClientsAndOperationsAndQuitsOnQ() throws {
        let root = try Paths.temporaryDirectory("ninep-top")
        defer { try? FileManager.default.removeItem(at: root) }
        let metricsPort = try freeLoopbackPort()
        let server = try NinepdProcess(export: root, extraArguments: ["--metrics-listen", "tcp:127.0.0.1:\(metricsPort)"], logDirectory: root)
        defer { _ = server.stop() }
        let load = try Spawned(
            Self.ninep, ["bench", "--server", "127.0.0.1:\(server.port)", "--workload", "getattr", "--duration", "30", "--warmup", "0"],
            output: root.appendingPathComponent("bench.log").path)
        defer { load.terminate() }

        let tmux = Tmux(name: "ninep-top-\(getpid())")
        defer { tmux.killServer() }
        try tmux.start(width: 150, height: 45, command: "\(Self.ninep) top --metrics 127.0.0.1:\(metricsPort) --interval 0.5")
        var screen = ""
        let shown = waitUntil(within: .seconds(20), pollingEvery: .milliseconds(200)) {
            screen = tmux.capture()
            return Self.getattrRate(in: screen) > 0 && screen.contains("127.0.0.1:")
        }
        #expect(shown, "ninep top never showed the loaded client's getattr rate; screen:\n\(screen)")
        #expect(screen.contains("CLIENT") && screen.contains("OPERATION") && screen.contains("MEMORY WAIT SITE"), "screen:\n\(screen)")
        #expect(screen.contains("1 clients"), "the bench's connection is not counted; screen:\n\(screen)")
        tmux.sendKeys("q")
        #expect(waitUntil(within: .seconds(5), pollingEvery: .milliseconds(100)) { !tmux.isRunning }, "ninep top did not quit on q")

        let once = try run(Self.ninep, ["top", "--once", "--interval", "0.5", "--metrics", "127.0.0.1:\(metricsPort)"], timeout: .seconds(30))
        #expect(once.status == 0 && Self.getattrRate(in: once.output) > 0, "top --once: \(once.output)")
        let closed = try freeLoopbackPort()
        let unreachable = try run(Self.ninep, ["top", "--once", "--metrics", "127.0.0.1:\(closed)"], timeout: .seconds(30))
        #expect(unreachable.status == 2 && unreachable.output.contains("cannot read metrics from tcp:127.0.0.1:\(closed)"), "\(unreachable.output)")
        print("ninep top under load:\n\(screen)")
    }

    /// The REQ/S column of the getattr line (0 when there is none).
    static func getattrRate(in screen: String) -> Double {
        for line in screen.split(separator: "\n") where line.hasPrefix("getattr ") {
            let columns = line.split(separator: " ")
            if columns.count > 1, let rate = Double(columns[1]) { return rate }
        }
        return 0
    }
}

/// A Prometheus server for one test: scrapes one target every second, answers queries on a
/// loopback port, keeps its data in the test's directory.
final class PrometheusProcess {
    let child: Spawned
    let port: UInt16
    let log: URL

    init(directory: URL, target: String) throws {
        port = try freeLoopbackPort()
        log = directory.appendingPathComponent("prometheus.log")
        let configuration = directory.appendingPathComponent("prometheus.yml")
        try """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: ninepd
                static_configs:
                  - targets: ['\(target)']
            """.write(to: configuration, atomically: true, encoding: .utf8)
        child = try Spawned("/usr/bin/prometheus", [
            "--config.file=\(configuration.path)", "--storage.tsdb.path=\(directory.appendingPathComponent("tsdb").path)",
            "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
        ], output: log.path)
        guard waitForListener(port: port) else {
            child.terminate()
            throw TestFailure("prometheus did not start listening on port \(port); log: \(logText.suffix(2000))")
        }
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func stop() { child.terminate(grace: .seconds(5)) }

    /// The value of an instant query with one result (nil: no result).
    func value(_ query: String) async throws -> Double? {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = query.addingPercentEncoding(withAllowedCharacters: allowed) ?? query
        let body = try await MetricsFetch.get(.tcp(host: "127.0.0.1", port: port), path: "/api/v1/query?query=\(encoded)")
        guard let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              json["status"] as? String == "success",
              let data = json["data"] as? [String: Any]
        else { throw TestFailure("query \(query): unexpected answer \(body.prefix(500))") }
        if data["resultType"] as? String == "scalar", let pair = data["result"] as? [Any], let text = pair.last as? String {
            return Double(text)
        }
        guard let results = data["result"] as? [[String: Any]] else { throw TestFailure("query \(query): no result list in \(body.prefix(500))") }
        if results.isEmpty { return nil }
        guard results.count == 1, let pair = results[0]["value"] as? [Any], let text = pair.last as? String else {
            throw TestFailure("query \(query): expected one series, got \(body.prefix(800))")
        }
        return Double(text)
    }

    /// Polls until `query` equals `expected` (30 s at most; Prometheus answers 503 until
    /// it is ready).
    func waitFor(_ query: String, _ expected: Double) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if (try? await value(query)) == expected { return true }
            try await Task.sleep(for: .milliseconds(250))
        }
        return false
    }
}

/// A tmux server of the test's own (-L), one session running one command in a terminal of a
/// chosen size.
struct Tmux {
    let name: String

    func start(width: Int, height: Int, command: String) throws {
        let result = try run("/usr/bin/tmux", ["-L", name, "new-session", "-d", "-s", name, "-x", "\(width)", "-y", "\(height)", command])
        guard result.status == 0 else { throw TestFailure("tmux new-session: \(result.output)") }
    }

    func capture() -> String { (try? run("/usr/bin/tmux", ["-L", name, "capture-pane", "-p", "-t", name]).output) ?? "" }

    func sendKeys(_ keys: String) { _ = try? run("/usr/bin/tmux", ["-L", name, "send-keys", "-t", name, keys]) }

    var isRunning: Bool { (try? run("/usr/bin/tmux", ["-L", name, "has-session", "-t", name]).status) == 0 }

    func killServer() { _ = try? run("/usr/bin/tmux", ["-L", name, "kill-server"]) }
}
