import Foundation
import Testing

/// The real Linux kernel 9p client (Debian's user-mode-linux, a Linux 6.1 kernel run as a
/// process) mounts ninepd and runs Tests/KernelBattery/battery.py on the mount, with
/// cache=none and cache=loose, msize 8 KiB and 1 MiB. Every check of the battery must pass;
/// a skipped check fails the test too.
@Suite(.serialized)
struct KernelClientTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let cache: String
        let msize: Int
        var testDescription: String { "cache=\(cache) msize=\(msize)" }
    }

    static let cases = [
        Case(cache: "none", msize: 8192), Case(cache: "none", msize: 1_048_576),
        Case(cache: "loose", msize: 8192), Case(cache: "loose", msize: 1_048_576),
    ]

    @Test(arguments: cases)
    func batteryPasses(_ configuration: Case) throws {
        let root = try Paths.temporaryDirectory("ninep-kernel")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        let results = root.appendingPathComponent("results")
        let fm = FileManager.default
        try fm.createDirectory(at: export, withIntermediateDirectories: true)
        try fm.createDirectory(at: results, withIntermediateDirectories: true)
        // Escape fixtures: a secret outside the export, and links inside pointing at it.
        let marker = "ninep-secret-\(UUID().uuidString)"
        let secret = root.appendingPathComponent("secret.txt")
        try Data(marker.utf8).write(to: secret)
        let links = ["esc-rel": "../secret.txt", "esc-abs": secret.path, "esc-etc": "/etc"]
        for (name, target) in links {
            try fm.createSymbolicLink(atPath: export.appendingPathComponent(name).path, withDestinationPath: target)
        }
        let outsideBefore = try Set(fm.contentsOfDirectory(atPath: root.path))

        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }

        let script = Paths.packageRoot.appendingPathComponent("Tests/KernelBattery/battery.py").path
        let harness = Paths.packageRoot.appendingPathComponent("scripts/uml/run-9p-battery").path
        var arguments = [
            "--server", "tcp:127.0.0.1:\(server.port)",
            "--mount-opts", "cache=\(configuration.cache),msize=\(configuration.msize),access=user",
            "--script", script, "--out", results.path, "--timeout", "420",
            "--", "--msize", "\(configuration.msize)", "--escape-marker", marker,
        ]
        for (name, target) in links.sorted(by: { $0.key < $1.key }) { arguments += ["--escape-link", "\(name)=\(target)"] }
        let outcome = try run(harness, arguments, timeout: .seconds(480))
        let resultsFile = results.appendingPathComponent("results.json")
        guard outcome.status == 0, let data = fm.contents(atPath: resultsFile.path) else {
            let stderr = (try? String(contentsOf: results.appendingPathComponent("battery.stderr"), encoding: .utf8)) ?? ""
            Issue.record("the kernel client run produced no results (status \(outcome.status)): \(outcome.output.suffix(3000)) \(stderr.suffix(2000))")
            return
        }
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        let checks = json["checks"] as? [[String: Any]] ?? []
        #expect(checks.count >= 25, "the battery ran only \(checks.count) checks")
        var summary: [String] = []
        for check in checks {
            let name = check["name"] as? String ?? "?"
            let ok = check["ok"] as? Bool ?? false
            let skipped = check["skipped"] as? Bool ?? false
            let detail = check["detail"] as? String ?? ""
            let seconds = check["seconds"] as? Double ?? 0
            #expect(ok && !skipped, "\(configuration.testDescription) \(name): \(detail)")
            summary.append("\(ok && !skipped ? "ok  " : "FAIL") \(name) (\(String(format: "%.2f", seconds)) s) \(detail.prefix(160))")
        }
        print("kernel battery \(configuration.testDescription):\n  " + summary.joined(separator: "\n  "))

        // Nothing outside the export was touched, and the secret is intact.
        #expect(try Set(fm.contentsOfDirectory(atPath: root.path)).subtracting(["ninepd.log"]) == outsideBefore.subtracting(["ninepd.log"]))
        #expect(try String(contentsOf: secret, encoding: .utf8) == marker)
        #expect(server.stop() == 0, "ninepd did not exit cleanly on SIGTERM; log: \(server.logText.suffix(2000))")
    }
}
