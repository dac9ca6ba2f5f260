import Foundation
import NinePTestSupport
import Testing

/// The real Linux kernel 9p client (Debian's user-mode-linux, a Linux 6.1 kernel run as a
/// process) mounts ninepd and runs Tests/KernelBattery/battery.py on the mount: cache=none with
/// msize 8 KiB and cache=loose with msize 1 MiB (each cache mode and each msize once: the other
/// two pairings added 3 minutes to CI; KernelPosixTests runs cache=none at the kernel's default
/// msize of 128 KiB, KernelDataIntegrityTests every cache mode at 256 KiB), and the
/// descriptor-limit case. Every check of the battery must pass; a skipped check fails the test too.
@Suite(.serialized)
struct KernelClientTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let cache: String
        let msize: Int
        /// Run ninepd with this RLIMIT_NOFILE, and only these checks with `many` files.
        var descriptorLimit: Int? = nil
        var only: String? = nil
        var many: Int? = nil
        var testDescription: String {
            "cache=\(cache) msize=\(msize)" + (descriptorLimit.map { " with \($0) descriptors" } ?? "")
        }
    }

    static let cases = [
        // At msize 8192, 3000 entries already take about 15 Treaddirs of 8 KiB; creating 10,000
        // files in UML takes a minute, spent once, with cache=loose below.
        Case(cache: "none", msize: 8192, many: 3000), Case(cache: "loose", msize: 1_048_576),
        // cache=loose keeps two fids for every file it wrote (one open for write-back): 3000
        // files need about 9000 descriptors unless idle fids give theirs back and reopen by
        // file handle. Open fids keep theirs (their locks and unlinked files depend on it).
        Case(cache: "loose", msize: 65536, descriptorLimit: 4096,
             only: "readdir-many,rename,hardlink,symlink,corner-unlink-open,corner-rename-open,corner-rmdir-open,corner-distinct-ino,locks-posix,xattr",
             many: 3000),
    ]

    @Test(arguments: cases)
    func batteryPasses(_ configuration: Case) throws {
        let fm = FileManager.default
        let (root, export, results) = try Paths.kernelRunDirectories("ninep-kernel")
        defer { try? FileManager.default.removeItem(at: root) }
        // Escape fixtures: a secret outside the export, and links inside pointing at it.
        let marker = "ninep-secret-\(UUID().uuidString)"
        let secret = root.appendingPathComponent("secret.txt")
        try Data(marker.utf8).write(to: secret)
        let links = ["esc-rel": "../secret.txt", "esc-abs": secret.path, "esc-etc": "/etc"]
        for (name, target) in links {
            try fm.createSymbolicLink(atPath: export.appendingPathComponent(name).path, withDestinationPath: target)
        }
        let outsideBefore = try Set(fm.contentsOfDirectory(atPath: root.path))

        let server = try NinepdProcess(export: export, logDirectory: root, descriptorLimit: configuration.descriptorLimit)
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
        if let only = configuration.only { arguments += ["--only", only] }
        if let many = configuration.many { arguments += ["--many", "\(many)"] }
        let outcome = try run(harness, arguments, timeout: .seconds(480))
        guard let checks = try guestChecks(in: results, harness: outcome) else { return }
        let expected = configuration.only.map { $0.split(separator: ",").count } ?? 25
        #expect(checks.count >= expected, "the battery ran only \(checks.count) checks")
        expectAllPassed(checks, title: "kernel battery \(configuration.testDescription)")

        // Nothing outside the export was touched, and the secret is intact.
        #expect(try Set(fm.contentsOfDirectory(atPath: root.path)).subtracting(["ninepd.log"]) == outsideBefore.subtracting(["ninepd.log"]))
        #expect(try String(contentsOf: secret, encoding: .utf8) == marker)
        if configuration.descriptorLimit != nil {
            #expect(server.logText.contains("descriptor limit reached"), "the descriptor limit was never reached: the case proves nothing")
        }
        #expect(server.stop() == 0, "ninepd did not exit cleanly on SIGTERM; log: \(server.logText.suffix(2000))")
    }
}
