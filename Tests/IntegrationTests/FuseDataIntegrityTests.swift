import Foundation
import NinePTestSupport
import Testing

/// Data integrity through `ninep mount` (issue 13), through `scripts/fuse-data-check --quick`:
/// ninepd on a temporary export, `ninep mount -f` as a process of its own; first an interrupt
/// storm (4 processes under SIGALRM every ~1 ms, so INTERRUPTs race replies: a deadlock there
/// once hung the mount), then the random-operation exerciser with two seeds (mapped and O_DIRECT
/// IO; fio --verify with the psync and mmap engines), fio --verify with several jobs at once
/// (psync, libaio O_DIRECT, pvsync2, sequential, mmap) and 15 of stress-ng's file stressors;
/// every file compared with the export at the end, caches dropped. Every check must pass (0
/// mismatches, no hang), and nothing may stay mounted.
@Suite(.serialized)
struct FuseDataIntegrityTests {
    static var canRun: Bool {
        geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/fio")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/stress-ng")
    }

    @Test(.enabled(if: canRun, "needs root (mounting FUSE), Debian's fio and stress-ng"), .timeLimit(.minutes(10)))
    func exerciserFioAndStressNgFindNoMismatch() throws {
        let work = try Paths.temporaryDirectory("fuse-data-check")
        defer { try? FileManager.default.removeItem(at: work) }
        let json = work.appendingPathComponent("checks.json")
        let script = Paths.packageRoot.appendingPathComponent("scripts/fuse-data-check").path
        let result = try run("/usr/bin/python3", [
            script, "--quick", "--seed", "13", "--bin-dir", Paths.ninepd.deletingLastPathComponent().path, "--json", json.path,
        ], timeout: .seconds(360))
        print(result.output.suffix(6000))
        #expect(result.status == 0, "fuse-data-check --quick: \(result.output.suffix(6000))")
        guard let data = FileManager.default.contents(atPath: json.path),
              let report = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let checks = report["checks"] as? [[String: Any]]
        else {
            Issue.record("fuse-data-check wrote no checks: \(result.output.suffix(4000))")
            return
        }
        let names = checks.compactMap { $0["name"] as? String }
        for failed in checks where failed["ok"] as? Bool != true {
            Issue.record("\(failed["name"] ?? "?"): \(failed["detail"] ?? "")")
        }
        // The run did what it says: both exerciser seeds, the multi-job fio runs, the stressors.
        #expect(names.filter { $0.hasPrefix("exerciser seed") && $0.contains(", 0 mismatches") }.count == 2, "\(names)")
        #expect(names.filter { $0.hasPrefix("fio --verify") }.count >= 4, "\(names)")
        #expect(names.filter { $0.hasPrefix("stress-ng --") }.count == 15, "\(names)")
        #expect(names.contains { $0.hasPrefix("interrupt storm") }, "\(names)")
        #expect(names.contains { $0.hasPrefix("nothing left mounted") })
        #expect(report["failed"] as? Int == 0)
    }
}
