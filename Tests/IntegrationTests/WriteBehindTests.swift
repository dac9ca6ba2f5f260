import Foundation
import NinePTestSupport
import Testing

/// `--write-behind auto` turns write-behind on exactly when ninepd starts inside a
/// memory-limited cgroup (where dirty page cache counts against the limit), and the start-up
/// line says which, with the limit it found.
@Suite(.serialized)
struct WriteBehindTests {
    static var canRun: Bool { MemoryPressureTests.canRun }

    /// Starts ninepd (in `cgroup` when given), waits for its start-up line, stops it and
    /// returns the line.
    func startUpLine(cgroup: String?, extra: [String]) throws -> String {
        let export = try Paths.temporaryDirectory("ninep-writebehind")
        defer { try? FileManager.default.removeItem(at: export) }
        let port = try freeLoopbackPort()
        let log = export.appendingPathComponent("ninepd.log").path
        let ninepd = ([Paths.ninepd.path, "--export", export.path, "--listen", "tcp:127.0.0.1:\(port)"] + extra)
            .map { "'\($0)'" }.joined(separator: " ")
        let enter = cgroup.map { "echo $$ > '\($0)/cgroup.procs' && " } ?? ""
        let child = try Spawned("/bin/sh", ["-c", "\(enter)exec \(ninepd)"], output: log)
        defer { child.terminate() }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline && child.isRunning {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("exporting ") }) { return String(line) }
            usleep(50_000)
        }
        Issue.record("no start-up line within 30 s: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        return ""
    }

    @Test(.enabled(if: canRun, MemoryPressureTests.skipReason))
    func autoFollowsTheMemoryCgroupLimit() throws {
        let cgroup = "/sys/fs/cgroup/memory/ninep-writebehind-\(getpid())"
        try FileManager.default.createDirectory(atPath: cgroup, withIntermediateDirectories: false)
        defer { rmdir(cgroup) }
        try "256M".write(toFile: cgroup + "/memory.limit_in_bytes", atomically: false, encoding: .utf8)

        let limited = try startUpLine(cgroup: cgroup, extra: [])
        #expect(limited.contains("write-behind on (memory cgroup limit 256 MiB)"), "\(limited)")
        let forcedOff = try startUpLine(cgroup: cgroup, extra: ["--write-behind", "off"])
        #expect(forcedOff.contains("write-behind off"), "\(forcedOff)")
        // This test process is not in a limited cgroup (else the line below would say so).
        let free = try startUpLine(cgroup: nil, extra: [])
        let own = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
        let memoryPath = own.split(separator: "\n").first { $0.contains(":memory:") }.map { String($0.split(separator: ":", maxSplits: 2)[2]) } ?? "/"
        let ownLimit = (try? String(contentsOfFile: "/sys/fs/cgroup/memory\(memoryPath == "/" ? "" : memoryPath)/memory.limit_in_bytes", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? Int.max
        if ownLimit >= Int(ProcessInfo.processInfo.physicalMemory) {
            #expect(free.contains("write-behind off"), "\(free)")
        } else {
            #expect(free.contains("write-behind on (memory cgroup limit"), "\(free)")
        }
        let forcedOn = try startUpLine(cgroup: nil, extra: ["--write-behind", "on"])
        #expect(forcedOn.contains("write-behind on"), "\(forcedOn)")
    }
}
