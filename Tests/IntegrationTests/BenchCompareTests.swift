import Foundation
import NinePTestSupport
import Testing

/// `scripts/bench-compare --quick`: ninepd and diod side by side (host client, kernel client in
/// user-mode-linux, iperf3 and a unix socket pair), with the ninep and ninepd built for the tests.
/// The report must have every row with a number for both servers.
@Suite(.serialized)
struct BenchCompareTests {
    static let rowsForBoth = [
        "seq read, msize 1 MiB", "seq write, msize 1 MiB", "seq read, msize 128 KiB", "seq write, msize 128 KiB",
        "getattr x1 (ops/s)", "getattr x1 p50", "getattr x1 p99", "getattr x16 (ops/s)", "getattr x16 p50", "getattr x16 p99",
        "small-file loop x1", "small-file loop x16", "readdir of 10,000 entries", "readdir (entries/s)", "16 connections",
        "dd write", "dd read", "small-file loop (ops/s)",
        "RSS after start", "peak RSS, part 1", "peak RSS under the 16-connection load",
        "CPU s per GiB, seq read msize 1 MiB", "CPU s per GiB, seq write msize 1 MiB",
        "CPU s per GiB, seq read msize 128 KiB", "CPU s per GiB, seq write msize 128 KiB",
    ]

    /// The cells of the first table row whose first cell starts with `label`.
    func row(_ table: String, _ label: String) -> [String]? {
        for line in table.split(separator: "\n") where line.hasPrefix("| \(label)") {
            return line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    func isNumber(_ cell: String) -> Bool { Double(cell.replacingOccurrences(of: ",", with: "")) != nil }

    @Test func quickRunReportsEveryRowForBothServers() throws {
        let root = try Paths.temporaryDirectory("bench-compare")
        defer { try? FileManager.default.removeItem(at: root) }
        let output = root.appendingPathComponent("compare.md").path
        let script = Paths.packageRoot.appendingPathComponent("scripts/bench-compare").path
        let began = ContinuousClock.now
        let result = try run("/usr/bin/python3", [
            script, "--quick", "--output", output, "--bin-dir", Paths.ninepd.deletingLastPathComponent().path,
        ], timeout: .seconds(300))
        let elapsed = ContinuousClock.now - began
        #expect(result.status == 0, "bench-compare --quick: \(result.output.suffix(4000))")
        let table = try String(contentsOfFile: output, encoding: .utf8)
        for label in BenchCompareTests.rowsForBoth {
            guard let cells = row(table, label) else {
                Issue.record("no row \"\(label)\" in the report:\n\(table)")
                continue
            }
            #expect(cells.count >= 5 && isNumber(cells[1]) && isNumber(cells[2]) && isNumber(cells[3]), "row \(label): \(cells)")
        }
        for label in ["iperf3, one TCP stream", "unix stream socket pair"] {
            #expect(row(table, label).map { isNumber($0[1]) } == true, "limit \(label): \(row(table, label) ?? [])")
        }
        for section in ["## Machine", "- CPU:", "- kernel:", "- swift:", "- git commit:", "## Targets"] {
            #expect(table.contains(section), "no \(section) in the report")
        }
        #expect(!table.contains("## Failures"), "failures:\n\(table)")
        print("bench-compare --quick took \(elapsed)")
    }
}
