import ArgumentParser
import Glibc
import NinePMetricsReader
import NinePTransport

/// `ninep top`: a live view of a running ninepd from its metrics endpoint (ninepd
/// --metrics-listen), refreshed in place like top(1).
struct Top: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Watch a running ninepd: clients, operations, latencies and memory waits, live.",
        discussion: """
            Reads the metrics endpoint of a ninepd started with --metrics-listen (not the 9P
            port) every --interval seconds and shows, in place:
              - the totals: clients, requests/s, bytes read and written per second, refused
                connections, Tflushes by outcome;
              - one line per client (connection): requests/s, mean latency, errors/s, bytes
                read and written per second, fids, requests in flight, buffers held;
              - one line per operation: requests/s, total, mean and 99th-percentile latency
                (the upper bound of the bucket holding it), errors/s;
              - the memory wait sites: how often a request waited for a buffer.
            q quits (so does ^C). --once prints one snapshot (two scrapes --interval apart)
            for scripts.

              ninepd --export /srv --metrics-listen tcp:127.0.0.1:9640 &
              ninep top --metrics 127.0.0.1:9640
              ninep top --once --interval 5
            """
    )

    @Option(help: ArgumentHelp(
        "ninepd's metrics endpoint: tcp:HOST:PORT, HOST:PORT or unix:PATH (default: $NINEP_METRICS, else tcp:127.0.0.1:9640).",
        valueName: "addr"))
    var metrics: String?

    @Option(help: ArgumentHelp("Seconds between refreshes (0.2 to 3600).", valueName: "seconds"))
    var interval: Double = 1

    @Flag(help: "Print one snapshot and exit instead of refreshing in place.")
    var once = false

    func validate() throws {
        guard (0.2...3600).contains(interval) else { throw ValidationError("--interval \(interval) is out of range: give 0.2 to 3600 seconds") }
        _ = try address()
    }

    func address() throws -> ListenAddress {
        let text = metrics ?? getenv("NINEP_METRICS").map { String(cString: $0) } ?? "tcp:127.0.0.1:9640"
        do {
            return try ListenAddress(parsing: addressSpelledOut(text))
        } catch {
            throw ValidationError("--metrics \(error.description)")
        }
    }

    func run() async throws {
        let endpoint = try address()
        let pause = Duration.milliseconds(Int64(interval * 1000))
        if once {
            guard case let .success(first) = await Self.scrape(endpoint).reportingFailure() else { throw ExitCode(2) }
            try await Task.sleep(for: pause)
            guard case let .success(second) = await Self.scrape(endpoint).reportingFailure() else { throw ExitCode(2) }
            let activity = ServerActivity(previous: first, current: second, seconds: interval)
            print(TopScreen.render(activity, endpoint: endpoint, width: 200, interactive: false).joined(separator: "\n"))
            return
        }
        let terminal = TerminalMode()
        defer { terminal.restore() }
        var previous: (samples: MetricSamples, at: ContinuousClock.Instant)?
        while !Task.isCancelled {
            let lines: [String]
            switch await Self.scrape(endpoint) {
            case let .success(samples):
                let now = ContinuousClock.now
                let seconds = previous.map { Self.seconds(now - $0.at) } ?? interval
                lines = TopScreen.render(ServerActivity(previous: previous?.samples, current: samples, seconds: seconds),
                                         endpoint: endpoint, width: terminal.columns, interactive: true)
                previous = (samples, now)
            case let .failure(failure):
                lines = ["ninep top: \(failure.description)", "", "retrying every \(Formatting.fixed(interval, 1)) s; q quits"]
                previous = nil
            }
            terminal.show(lines)
            if terminal.waitForQuit(seconds: interval) { return }
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    struct TopFailure: Error, CustomStringConvertible {
        let description: String
    }

    static func scrape(_ endpoint: ListenAddress) async -> Result<MetricSamples, TopFailure> {
        let text: String
        do {
            text = try await MetricsFetch.get(endpoint, path: "/metrics", timeout: .seconds(5))
        } catch {
            return .failure(TopFailure(description: "cannot read metrics from \(endpoint): \(error.description) (is ninepd running with --metrics-listen \(endpoint)?)"))
        }
        do {
            return .success(try MetricSamples(parsing: text))
        } catch {
            return .failure(TopFailure(description: "\(endpoint) did not answer in the Prometheus text format: \(error.description)"))
        }
    }
}

extension Result where Failure == Top.TopFailure {
    /// Prints a failure as ninep reports errors.
    func reportingFailure() -> Self {
        if case let .failure(failure) = self { Report.printError("ninep: top: \(failure.description)") }
        return self
    }
}

/// The screen's lines for one refresh.
enum TopScreen {
    static func render(_ activity: ServerActivity, endpoint: ListenAddress, width: Int, interactive: Bool) -> [String] {
        var lines: [String] = []
        let flushes = ["aborted", "after_reply", "not_in_flight"].map { "\(Int(activity.flushes[$0] ?? 0)) \($0.replacingUnderscores())" }
        lines.append("ninep top: \(endpoint)\(interactive ? "   (q quits)" : "")")
        lines.append("\(Int(activity.connections)) clients, \(rate(activity.requestsPerSecond)) requests/s, read \(Formatting.size(activity.readBytesPerSecond))/s, written \(Formatting.size(activity.writtenBytesPerSecond))/s, \(Int(activity.refusedConnections)) connections refused")
        lines.append("flushes since start: " + flushes.joined(separator: ", "))
        if !activity.hasRequestMetrics {
            lines.append("(no request metrics at this endpoint: is it a ninepd with --metrics-listen?)")
        }
        lines.append("")
        lines.append(row(["CLIENT", "PEER", "REQ/S", "AVG", "ERR/S", "READ/S", "WRITE/S", "FIDS", "INFLIGHT", "BUF L/S"], widths: clientWidths))
        for client in activity.clients {
            lines.append(row([
                client.connection, client.peer, rate(client.perSecond), latency(client.averageSeconds), rate(client.errorsPerSecond),
                Formatting.size(client.readBytesPerSecond), Formatting.size(client.writtenBytesPerSecond), "\(Int(client.fids))",
                "\(Int(client.inFlight))", "\(Int(client.largeBuffers))/\(Int(client.smallBuffers))",
            ], widths: clientWidths))
        }
        if activity.clients.isEmpty { lines.append("  (no clients connected)") }
        lines.append("")
        lines.append(row(["OPERATION", "REQ/S", "TOTAL", "AVG", "P99<=", "ERR/S"], widths: operationWidths))
        for operation in activity.operations {
            lines.append(row([
                operation.type, rate(operation.perSecond), "\(Int(operation.total))", latency(operation.averageSeconds),
                latency(operation.p99Seconds), rate(operation.errorsPerSecond),
            ], widths: operationWidths))
        }
        lines.append("")
        lines.append(row(["MEMORY WAIT SITE", "WAITS/S", "TOTAL"], widths: [18, 9, 10]))
        for wait in activity.memoryWaits {
            lines.append(row([wait.site, rate(wait.waitsPerSecond), "\(Int(wait.waits))"], widths: [18, 9, 10]))
        }
        return lines.map { $0.count > width ? String($0.prefix(width)) : $0 }
    }

    static let clientWidths = [6, 22, 9, 9, 7, 10, 10, 6, 8, 8]
    static let operationWidths = [10, 9, 10, 9, 9, 7]

    /// Left-aligned first two columns (names), right-aligned numbers.
    static func row(_ cells: [String], widths: [Int]) -> String {
        cells.enumerated().map { index, cell in
            let width = index < widths.count ? widths[index] : cell.count
            return Formatting.pad(cell, width, left: index == 0 || (index == 1 && widths.count > 6))
        }.joined(separator: " ")
    }

    static func rate(_ value: Double) -> String {
        value >= 100 || value == 0 ? "\(Int(value.rounded()))" : Formatting.fixed(value, 1)
    }

    static func latency(_ seconds: Double?) -> String {
        guard let seconds else { return "-" }
        if seconds.isInfinite { return "inf" }
        if seconds >= 1 { return Formatting.fixed(seconds, 2) + " s" }
        if seconds >= 1e-3 { return Formatting.fixed(seconds * 1e3, seconds >= 0.01 ? 0 : 1) + " ms" }
        return "\(Int((seconds * 1e6).rounded())) µs"
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String { String(map { $0 == "_" ? " " : $0 }) }
}

/// The terminal while `top` runs: keys read one at a time without echo, the screen redrawn
/// from the top; restored on exit. Without a terminal (a pipe), frames are printed one after
/// another.
final class TerminalMode {
    private var saved = termios()
    private let isTerminal: Bool
    private let keysAreRaw: Bool

    init() {
        isTerminal = isatty(1) == 1
        var raw = termios()
        if isatty(0) == 1 && tcgetattr(0, &saved) == 0 {
            raw = saved
            raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
            keysAreRaw = tcsetattr(0, TCSANOW, &raw) == 0
        } else {
            keysAreRaw = false
        }
        if isTerminal { write("\u{1B}[?25l") }  // hide the cursor
    }

    var columns: Int {
        var size = winsize()
        if isTerminal, ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 200
    }

    func show(_ lines: [String]) {
        if isTerminal {
            // Home, then each line with the rest of it cleared, then the rest of the screen.
            write("\u{1B}[H" + lines.map { $0 + "\u{1B}[K" }.joined(separator: "\n") + "\n\u{1B}[J")
        } else {
            write(lines.joined(separator: "\n") + "\n\n")
        }
    }

    /// Waits up to `seconds` for q (or for cancellation); true when the user quits.
    func waitForQuit(seconds: Double) -> Bool {
        var left = Int(seconds * 1000)
        while left > 0 {
            if Task.isCancelled { return true }
            let slice = min(left, 100)
            var poller = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            if keysAreRaw, poll(&poller, 1, Int32(slice)) == 1 {
                var byte: UInt8 = 0
                if Glibc.read(0, &byte, 1) == 1, byte == UInt8(ascii: "q") || byte == UInt8(ascii: "Q") { return true }
            } else if !keysAreRaw {
                usleep(UInt32(slice) * 1000)
            }
            left -= slice
        }
        return Task.isCancelled
    }

    func restore() {
        if keysAreRaw { tcsetattr(0, TCSANOW, &saved) }
        if isTerminal { write("\u{1B}[?25h") }
    }

    private func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(1, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { return }
            offset += written
        }
    }
}
