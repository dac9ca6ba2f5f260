import Foundation
import NinePTestSupport
import Testing

/// Issue 3's memory pressure proof: ninepd in a cgroup v1 memory cgroup limited to its budget plus
/// a margin; 16 clients outside keep 16 large reads and writes each in flight for 60 s while a hog
/// in the same cgroup allocates until the limit bites, again and again (scripts/memory-pressure).
/// Pass: zero failed requests, zero corrupted bytes, ninepd never OOM-killed, its RSS never above
/// budget + margin, and the limit did bite. diod runs through the same test and is only reported.
/// The clients are `ninep-load pressure` (this target depends on it, so it is built beside ninepd).
@Suite(.serialized)
struct MemoryPressureTests {
    static let cgroupV1Memory = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    static var canRun: Bool { geteuid() == 0 && FileManager.default.fileExists(atPath: cgroupV1Memory) }
    static var skipReason: Comment {
        if geteuid() != 0 { return "needs root: it creates a memory cgroup and starts the server inside it" }
        return "needs the cgroup v1 memory controller at /sys/fs/cgroup/memory (absent here)"
    }

    @Test(.enabled(if: canRun, skipReason), .timeLimit(.minutes(10)))
    func ninepdKeepsServingUnderCgroupMemoryPressure() throws {
        let work = try Paths.temporaryDirectory("ninep-pressure-test")
        defer { try? FileManager.default.removeItem(at: work) }
        let json = work.appendingPathComponent("result.json")
        let script = Paths.packageRoot.appendingPathComponent("scripts/memory-pressure").path
        // 60 s per server, as the issue asks: about 2.5 minutes with diod.
        let outcome = try run("/usr/bin/env", [
            "python3", script, "--ninepd", Paths.ninepd.path, "--servers", "ninepd,diod",
            "--duration", "60", "--connections", "16", "--depth", "16",
            "--budget", "32M", "--margin", "64M", "--output", "-", "--json", json.path,
        ], timeout: .seconds(540))
        print(outcome.output)
        guard let data = FileManager.default.contents(atPath: json.path),
              let all = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let results = all["results"] as? [[String: Any]],
              let ninepd = results.first(where: { $0["server"] as? String == "ninepd" })
        else {
            Issue.record("scripts/memory-pressure produced no result (status \(outcome.status)): \(outcome.output.suffix(4000))")
            return
        }
        if let setupError = ninepd["setup_error"] {
            Issue.record("ninepd did not run: \(setupError)")
            return
        }
        let limit = ninepd["limit"] as? Int ?? 0
        let peak = (ninepd["peak"] as? [String: Any])?["VmHWM"] as? Int ?? Int.max
        let hogs = ninepd["hogs"] as? [String: Any] ?? [:]
        let errors = ninepd["errors"] as? [String] ?? []
        #expect((ninepd["requests"] as? Int ?? 0) > 0, "no request completed")
        #expect(ninepd["failed"] as? Int == 0, "failed requests: \(ninepd["failed"] ?? "?"); first errors: \(errors)")
        #expect(ninepd["corrupted"] as? Int == 0, "corrupted bytes: \(ninepd["corrupted"] ?? "?"); \(errors)")
        #expect(ninepd["server_oom_killed"] as? Bool == false && ninepd["died"] as? Bool == false,
                "ninepd was killed or died: \(ninepd["exit"] ?? "?"); cgroup oom_kill events \(ninepd["cgroup_oom_kills"] ?? "?") for \(hogs["killed"] ?? "?") hog kills")
        #expect(peak <= limit, "ninepd peak RSS \(peak) bytes above budget + margin \(limit)")
        #expect(ninepd["limit_bit"] as? Bool == true, "the hog never hit the limit: \(hogs); the test proved nothing")
        if let diod = results.first(where: { $0["server"] as? String == "diod" }) {
            print("diod (reported, not asserted): failed \(diod["failed"] ?? "?"), corrupted \(diod["corrupted"] ?? "?"), exit \(diod["exit"] ?? diod["setup_error"] ?? "?")")
        }
    }
}
