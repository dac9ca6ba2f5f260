import Foundation
import NinePTestSupport
import Testing

/// `scripts/bench-fuse --quick`: `ninep mount` against sshfs (over a loopback sshd of the
/// script's own) and the local file system, plus `ninep bench` against the same ninepd, with the
/// binaries built for the tests. A smoke test: every row must have a number for every target;
/// the figures themselves are only reported (Benchmarks/results/fuse-compare.md has a full run).
@Suite(.serialized)
struct FuseBenchTests {
    static var canRun: Bool {
        geteuid() == 0 && ["/usr/bin/sshfs", "/usr/sbin/sshd", "/usr/bin/fio"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static let rowsForAll = [
        "seq write, 1 MiB blocks", "seq read, 1 MiB blocks", "4 KiB random read, 4 jobs", "create + stat + unlink loop",
        "readdir of 1,000 entries", "readdir, first listing",
    ]
    static let benchRows = ["seqread, 4 calls in flight", "seqread, 1 call in flight", "seqwrite, 4 calls in flight", "smallfile"]

    func row(_ table: String, _ label: String) -> [String]? {
        for line in table.split(separator: "\n") where line.hasPrefix("| \(label)") {
            return line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    func isNumber(_ cell: String) -> Bool { Double(cell.replacingOccurrences(of: ",", with: "")).map { $0 > 0 } ?? false }

    @Test(.enabled(if: canRun, "needs root, Debian's sshfs, openssh-server and fio"), .timeLimit(.minutes(5)))
    func quickRunReportsEveryFigure() throws {
        let root = try Paths.temporaryDirectory("bench-fuse")
        defer { try? FileManager.default.removeItem(at: root) }
        let output = root.appendingPathComponent("fuse-compare.md").path
        let script = Paths.packageRoot.appendingPathComponent("scripts/bench-fuse").path
        let result = try run("/usr/bin/python3", [
            script, "--quick", "--output", output, "--bin-dir", Paths.ninepd.deletingLastPathComponent().path,
        ], timeout: .seconds(240))
        #expect(result.status == 0, "bench-fuse --quick: \(result.output.suffix(4000))")
        let table = try String(contentsOfFile: output, encoding: .utf8)
        for label in FuseBenchTests.rowsForAll {
            guard let cells = row(table, label) else {
                Issue.record("no row \"\(label)\" in the report:\n\(table)")
                continue
            }
            #expect(cells.count >= 4 && isNumber(cells[1]) && isNumber(cells[2]) && isNumber(cells[3]), "row \(label): \(cells)")
        }
        for label in FuseBenchTests.benchRows {
            #expect(row(table, label).map { $0.count >= 2 && isNumber($0[1]) } == true, "ninep bench \(label): \(row(table, label) ?? [])")
        }
        for section in ["## Machine", "- load average", "## Targets (issue 13)", "9pfuse"] {
            #expect(table.contains(section), "no \(section) in the report")
        }
        #expect(!table.contains("## Failures"), "failures:\n\(table)")
    }
}
