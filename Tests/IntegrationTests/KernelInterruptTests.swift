import Foundation
import Testing

/// The real Linux kernel 9p client (Debian's user-mode-linux, Linux 6.1) mounts ninepd with
/// cache=none and runs Tests/KernelBattery/interrupt.py on the mount: processes blocked on the
/// mount (FIFO open and read, F_SETLKW against a lock held through the same and through a second
/// connection) and a 64 MiB write(2) in progress are interrupted with SIGINT and SIGKILL. Each
/// blocked process must be gone within 2 s of the signal, locks held by others must survive, an
/// interrupted write must leave every 4 KiB block entirely old or entirely new (msize 8192 makes
/// the kernel send many Twrites per block run, so a Twrite that ends inside a block would show),
/// and the mount must keep working. Every check must pass; a skipped check fails the test too.
@Suite(.serialized)
struct KernelInterruptTests {
    static let expectedChecks = [
        "fifo-open-sigint", "fifo-read-sigint", "fifo-open-sigkill", "fifo-read-sigkill",
        "lock-wait-sigint", "lock-wait-sigkill", "lock-wait-remote-sigint", "lock-wait-remote-sigkill",
        "write-interrupted-sigkill", "write-interrupted-sigint", "mount-usable",
    ]

    @Test(arguments: ["cache=none,msize=1048576,access=user", "cache=none,msize=8192,access=user"])
    func interruptsAreClean(_ mountOptions: String) throws {
        let root = try Paths.temporaryDirectory("ninep-interrupt")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        let results = root.appendingPathComponent("results")
        let fm = FileManager.default
        try fm.createDirectory(at: export, withIntermediateDirectories: true)
        try fm.createDirectory(at: results, withIntermediateDirectories: true)

        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }

        let script = Paths.packageRoot.appendingPathComponent("Tests/KernelBattery/interrupt.py").path
        let harness = Paths.packageRoot.appendingPathComponent("scripts/uml/run-9p-battery").path
        let arguments = [
            "--server", "tcp:127.0.0.1:\(server.port)", "--mount-opts", mountOptions,
            "--script", script, "--out", results.path, "--timeout", "900",
        ]
        let outcome = try run(harness, arguments, timeout: .seconds(960))
        let resultsFile = results.appendingPathComponent("results.json")
        guard outcome.status == 0, let data = fm.contents(atPath: resultsFile.path) else {
            let stdout = (try? String(contentsOf: results.appendingPathComponent("battery.stdout"), encoding: .utf8)) ?? ""
            let stderr = (try? String(contentsOf: results.appendingPathComponent("battery.stderr"), encoding: .utf8)) ?? ""
            Issue.record("""
                the kernel client run produced no results (status \(outcome.status)): \(outcome.output.suffix(3000))
                checks so far: \(stdout.suffix(4000)) \(stderr.suffix(2000))
                """)
            return
        }
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        let checks = json["checks"] as? [[String: Any]] ?? []
        let names = checks.compactMap { $0["name"] as? String }
        #expect(names == Self.expectedChecks, "checks run: \(names)")
        var summary: [String] = []
        for check in checks {
            let name = check["name"] as? String ?? "?"
            let ok = check["ok"] as? Bool ?? false
            let skipped = check["skipped"] as? Bool ?? false
            let detail = check["detail"] as? String ?? ""
            let seconds = check["seconds"] as? Double ?? 0
            #expect(ok && !skipped, "\(mountOptions) \(name): \(detail)")
            summary.append("\(ok && !skipped ? "ok  " : "FAIL") \(name) (\(String(format: "%.2f", seconds)) s) \(detail.prefix(1200))")
        }
        print("kernel interrupt checks \(mountOptions):\n  " + summary.joined(separator: "\n  "))

        #expect(server.stop() == 0, "ninepd did not exit cleanly on SIGTERM; log: \(server.logText.suffix(2000))")
    }
}
