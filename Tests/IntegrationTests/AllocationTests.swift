import Foundation
import NinePTestSupport
import Testing

/// DESIGN.md promise 5: after warm-up, walk/lopen/read/write/getattr/clunk do zero heap
/// allocations in ninepd. scripts/bench-allocs runs ninepd under the LD_PRELOAD counting
/// interposer (Tools/mallocshim) and counts mallocs per request, one message type per phase;
/// once as started by default and once with request metrics on (--metrics-listen), whose
/// counting is on the request path.
@Suite(.serialized)
struct AllocationTests {
    static let required = ["walk", "lopen", "read 4 KiB", "write 4 KiB", "getattr", "clunk"]

    @Test(arguments: [false, true])
    func steadyStateRequestsAllocateNothing(withMetrics: Bool) throws {
        let work = try Paths.temporaryDirectory("ninep-alloc-test")
        defer { try? FileManager.default.removeItem(at: work) }
        let json = work.appendingPathComponent("allocations.json")
        let shim = work.appendingPathComponent("mallocshim.so")
        let script = Paths.packageRoot.appendingPathComponent("scripts/bench-allocs").path
        let outcome = try run("/usr/bin/env", [
            "python3", script, Paths.ninepd.path,
            "--iterations", "10000", "--warmup", "2000",
            "--shim", try buildShim(into: shim),
            "--output", "-", "--json", json.path, "--max-per-request", "0",
        ] + (withMetrics ? ["--server-arg=--metrics-listen", "--server-arg=tcp:127.0.0.1:\(try freeLoopbackPort())"] : []),
        timeout: .seconds(600))
        guard let data = FileManager.default.contents(atPath: json.path),
              let figures = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let rows = figures["rows"] as? [String: [String: Any]]
        else {
            Issue.record("bench-allocs produced no figures (status \(outcome.status)): \(outcome.output.suffix(4000))")
            return
        }
        // The counter must be live, or every zero below would be vacuous.
        let counted = figures["allocations_before_measuring"] as? Int ?? 0
        #expect(counted > 0, "the shim counted no allocation in ninepd from start-up to the end of warm-up: is LD_PRELOAD honoured?")
        func perRequest(_ name: String) -> Double? { rows[name]?["per_request"] as? Double }
        let summary = rows.keys.sorted().map { name in
            "\(name): \(String(format: "%.4f", perRequest(name) ?? -1))"
        }.joined(separator: ", ")
        print("mallocs per request after warm-up (\(Paths.ninepd.path)\(withMetrics ? " with --metrics-listen" : ""); \(counted) allocations before measuring): \(summary)")
        for name in Self.required {
            guard let count = perRequest(name) else {
                Issue.record("bench-allocs reported no row \(name): \(outcome.output.suffix(3000))")
                continue
            }
            #expect(count == 0, "\(name): \(count) mallocs per request after warm-up (all rows: \(summary))")
        }
        // Exit status 1 is the script's own verdict on the same figures; anything else is a setup failure.
        #expect(outcome.status == 0 || outcome.status == 1, "bench-allocs failed to run: \(outcome.output.suffix(3000))")
    }
}

/// Builds Tools/mallocshim into `output` with scripts/build-mallocshim; returns its path.
func buildShim(into output: URL) throws -> String {
    let script = Paths.packageRoot.appendingPathComponent("scripts/build-mallocshim").path
    let built = try run("/bin/sh", [script, output.path], timeout: .seconds(120))
    guard built.status == 0, FileManager.default.fileExists(atPath: output.path) else {
        throw TestFailure("scripts/build-mallocshim failed (status \(built.status)): \(built.output)")
    }
    return output.path
}
