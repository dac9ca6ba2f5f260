import Foundation
import NinePTestSupport
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
        let (root, export, results) = try Paths.kernelRunDirectories("ninep-interrupt")
        defer { try? FileManager.default.removeItem(at: root) }

        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }

        let script = Paths.packageRoot.appendingPathComponent("Tests/KernelBattery/interrupt.py").path
        let harness = Paths.packageRoot.appendingPathComponent("scripts/uml/run-9p-battery").path
        var arguments = [
            "--server", "tcp:127.0.0.1:\(server.port)", "--mount-opts", mountOptions,
            "--script", script, "--out", results.path, "--timeout", "900",
        ]
        // At msize 8192 one write(2) of 64 MiB is 8,000 Twrites, about 7 s in UML, and the
        // write-interrupted checks fill and rewrite it five times each: 16 MiB keeps every
        // signal point (a fraction of the measured write time) inside a write of 2,000 Twrites
        // and saves about 160 s of CI.
        if mountOptions.contains("msize=8192") { arguments += ["--", "--write-mib", "16"] }
        let outcome = try run(harness, arguments, timeout: .seconds(960))
        guard let checks = try guestChecks(in: results, harness: outcome) else { return }
        #expect(checks.map(\.name) == Self.expectedChecks, "checks run: \(checks.map(\.name))")
        expectAllPassed(checks, title: "kernel interrupt checks \(mountOptions)", detailLimit: 1200)

        #expect(server.stop() == 0, "ninepd did not exit cleanly on SIGTERM; log: \(server.logText.suffix(2000))")
    }
}
