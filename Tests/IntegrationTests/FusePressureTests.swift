import Foundation
import NinePTestSupport
import Testing

/// Forward progress of `ninep mount` under memory pressure (issue 13), through
/// `scripts/fuse-pressure`: the mount daemon in a 64 MiB cgroup v1 memory cgroup with a hog in the
/// same cgroup at the limit, writers and readers (O_DIRECT, verified) and a metadata worker
/// through the mount for 60 s; then, still under pressure, a `cat` blocked on a stopped ninepd
/// ends within 1 s of SIGINT and of SIGKILL and the mount works after SIGCONT; then the data is
/// read back. Pass: 0 failed IO, 0 mismatches, 0 operations slower than 10 s, the daemon never
/// killed, its peak RSS within its budget, and the limit did bite.
@Suite(.serialized)
struct FusePressureTests {
    static var canRun: Bool {
        geteuid() == 0 && FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    }

    @Test(.enabled(if: canRun, "needs root and the cgroup v1 memory controller at /sys/fs/cgroup/memory"), .timeLimit(.minutes(5)))
    func mountKeepsServingInA64MiBCgroupWithAHog() throws {
        let work = try Paths.temporaryDirectory("fuse-pressure")
        defer { try? FileManager.default.removeItem(at: work) }
        let json = work.appendingPathComponent("result.json")
        let script = Paths.packageRoot.appendingPathComponent("scripts/fuse-pressure").path
        let result = try run("/usr/bin/python3", [
            script, "--duration", "60", "--bin-dir", Paths.ninepd.deletingLastPathComponent().path, "--json", json.path,
        ], timeout: .seconds(240))
        print(result.output.suffix(5000))
        #expect(result.status == 0, "fuse-pressure: \(result.output.suffix(5000))")
        guard let data = FileManager.default.contents(atPath: json.path),
              let report = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let checks = report["checks"] as? [String: Bool]
        else {
            Issue.record("fuse-pressure wrote no result: \(result.output.suffix(4000))")
            return
        }
        for (name, ok) in checks where !ok {
            Issue.record("\(name): \(report["errors"] ?? "")")
        }
        #expect((report["ops"] as? Int ?? 0) > 0, "no IO went through the mount")
        #expect(report["failed"] as? Int == 0 && report["mismatches"] as? Int == 0 && report["hangs"] as? Int == 0,
                "failed \(report["failed"] ?? "?"), mismatches \(report["mismatches"] ?? "?"), hangs \(report["hangs"] ?? "?")")
        let hogs = report["hogs"] as? [String: Int] ?? [:]
        #expect((hogs["killed"] ?? 0) > 0, "the hog never hit the limit: \(hogs); the run proved nothing")
        #expect(checks.keys.contains { $0.contains("within 1 s of SIGINT") } && checks.keys.contains { $0.contains("within 1 s of SIGKILL") })
        #expect(report["pass"] as? Bool == true)
    }
}
