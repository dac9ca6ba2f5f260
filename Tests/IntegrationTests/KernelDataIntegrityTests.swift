import Foundation
import NinePTestSupport
import Testing

/// Issue 12's data-integrity check through the Linux kernel client (user-mode-linux):
/// Tests/KernelBattery/exerciser.py applies 3000 random operations (pwrite, pread, ftruncate,
/// holes, mapped reads and writes, O_DIRECT, fsync, reopen) to a file on the mount and to a model
/// of it, checking every read, then fio verifies 16 MiB of random writes (crc32c) with the psync
/// engine and, where the mount allows shared writable mappings, the mmap engine. Each run draws a
/// fresh seed and prints it: `exerciser.py MOUNT OUT --seed N` replays it.
@Suite(.serialized)
struct KernelDataIntegrityTests {
    @Test(arguments: ["none", "loose", "mmap"])
    func randomOperationsReadBackWhatWasWritten(cache: String) throws {
        let (root, export, results) = try Paths.kernelRunDirectories("ninep-integrity")
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }
        let seed = UInt32.random(in: 1...UInt32.max)
        let outcome = try run(Paths.packageRoot.appendingPathComponent("scripts/uml/run-9p-battery").path, [
            "--server", "tcp:127.0.0.1:\(server.port)", "--mount-opts", "cache=\(cache),access=user,msize=262144",
            "--script", Paths.packageRoot.appendingPathComponent("Tests/KernelBattery/exerciser.py").path,
            "--out", results.path, "--timeout", "420", "--", "--seed", "\(seed)", "--fio",
        ], timeout: .seconds(480))
        let stdout = (try? String(contentsOf: results.appendingPathComponent("battery.stdout"), encoding: .utf8)) ?? ""
        print("cache=\(cache): \(stdout)")
        guard let data = FileManager.default.contents(atPath: results.appendingPathComponent("results.json").path),
              let result = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            Issue.record("the guest wrote no results.json (seed \(seed), run-9p-battery status \(outcome.status)): \(outcome.output.suffix(3000)) \(stdout.suffix(2000))")
            return
        }
        #expect(result["mismatches"] as? Int == 0, "cache=\(cache), seed \(seed): \(result["first_mismatch"] ?? "?")")
        #expect(result["done"] as? Int == result["operations"] as? Int, "cache=\(cache), seed \(seed): not every operation ran")
        let notes = result["notes"] as? [String] ?? []
        #expect(!notes.contains { $0.contains("O_DIRECT") }, "cache=\(cache): ninepd serves O_DIRECT, yet: \(notes)")
        let fio = result["fio"] as? [[String: Any]] ?? []
        #expect(!fio.isEmpty, "fio did not run")
        if cache != "none" {
            #expect(fio.count == 2, "cache=\(cache) allows shared writable mappings: fio's mmap engine should have run")
        }
        for run in fio {
            #expect(run["ok"] as? Bool == true, "cache=\(cache), seed \(seed): fio \(run["engine"] ?? "?") \(run["detail"] ?? "")")
        }
        #expect(server.stop() == 0, "ninepd did not exit cleanly on SIGTERM; log: \(server.logText.suffix(2000))")
    }
}
