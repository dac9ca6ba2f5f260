import Foundation
import NinePTestSupport
import Testing

/// Issue 12's POSIX battery through `ninep mount -o allow_other` (issue 13, "Whose identity"),
/// with the kernel's FUSE layer on this host: `scripts/fuse-posix-check` starts ninepd with
/// --access user or client, mounts it as root with the mount daemon as a process of its own
/// (a hung daemon has its FUSE connection aborted; nothing is left mounted), and runs
/// Tests/KernelBattery/posix.py on the mount and on a local directory, as root and as other
/// users. Each calling user gets an attach of its own, so the server checks as that user.
///
/// The bar is the kernel 9p client's (KernelPosixTests): with access=user every case passes but
/// the "client-groups" ones (supplementary groups the server's user database does not list: the
/// server checks as it knows the user), which are reported, not asserted; with access=client,
/// where the server leaves checking to the client, every case passes when the kernel checks the
/// mode bits (default_permissions). Without default_permissions nothing on the client checks,
/// so access=client is not run that way (docs/FUSE.md, "Identity"). Debian's diod, for
/// compatibility, with default_permissions: a connection whose first attach is root's is
/// served without permission checks there (the client is trusted to check), so every case must
/// pass as with access=client.
///
/// The first run also checks the per-user fid table with the kernel: another user reads 100
/// files with -o user_fids=64 (64 kept, the rest evicted), then root removes them and FORGET
/// must take every per-user fid away (the daemon's SIGUSR1 status line).
@Suite(.serialized)
struct FusePosixTests {
    @Test(arguments: [
        ("user", false),
        ("user", true),
        ("client", true),
        ("diod", true),
    ])
    func posixBatteryThroughTheMountMatchesALocalFileSystem(access: String, defaultPermissions: Bool) throws {
        guard geteuid() == 0 else {
            print("FusePosixTests: skipped (mounting FUSE and switching users need root)")
            return
        }
        if access == "diod" && !FileManager.default.fileExists(atPath: "/usr/sbin/diod") {
            print("FusePosixTests: diod run skipped (needs Debian's diod)")
            return
        }
        let results = FileManager.default.temporaryDirectory.appendingPathComponent("ninep-fuse-posix-\(getpid())-\(access)-\(defaultPermissions).json")
        defer { try? FileManager.default.removeItem(at: results) }
        var arguments = [
            Paths.packageRoot.appendingPathComponent("scripts/fuse-posix-check").path,
            "--bin-dir", Paths.ninepd.deletingLastPathComponent().path, "--results", results.path, "--timeout", "150",
        ]
        arguments += access == "diod" ? ["--server", "diod"] : ["--access", access]
        if defaultPermissions { arguments.append("--default-permissions") }
        let fidCheck = access == "user" && !defaultPermissions
        if fidCheck { arguments.append("--fid-check") }
        let outcome = try run("/usr/bin/python3", arguments, timeout: .seconds(200))
        let label = "\(access == "diod" ? "diod" : "access=\(access)")\(defaultPermissions ? ", default_permissions" : "")"
        print(outcome.output.split(separator: "\n").filter { $0.hasPrefix("posix:") }.map { "\(label): \($0)" }.joined(separator: "\n"))
        #expect(outcome.output.contains("mounts left: 0"), "\(label): a mount was left behind: \(outcome.output.suffix(3000))")
        if fidCheck {
            #expect(outcome.output.contains("fid-check: ok"), "\(label): per-user fids: \(outcome.output.split(separator: "\n").filter { $0.hasPrefix("fid-check") })")
        }
        guard let data = FileManager.default.contents(atPath: results.path),
              let result = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cases = result["cases"] as? [[String: Any]]
        else {
            Issue.record("\(label): posix.py wrote no results (status \(outcome.status)): \(outcome.output.suffix(4000))")
            return
        }
        #expect(cases.count >= 200, "\(label): the battery ran only \(cases.count) cases")
        let failed = cases.filter { $0["ok"] as? Bool != true && (access != "user" || $0["client_groups"] as? Bool != true) }
        let descriptions = failed.prefix(12).map { entry in
            "\(entry["class"] ?? "?") / \(entry["name"] ?? "?"): saw \(entry["target"] ?? "?"), a local file system gives \(entry["reference"] ?? "?")"
        }
        #expect(failed.isEmpty, "\(label): \(failed.count) POSIX cases differ from a local file system:\n\(descriptions.joined(separator: "\n"))")
    }

    /// The identity options are checked before anything connects or mounts.
    @Test func malformedIdentityOptionsAreRefused() throws {
        let ninep = Paths.ninepd.deletingLastPathComponent().appendingPathComponent("ninep").path
        let cases = [
            ("uidmap=1000", "needs SERVER:LOCAL"),
            ("gidmap=1:2:0", "an empty range"),
            ("uidmap=1000:2000:10,uidmap=1005:3000", "overlapping another uidmap"),
            ("uidmap=4294967295:1", "one past 4294967294"),
            ("user_fids=3", "between 16 and 1048576"),
        ]
        for (option, message) in cases {
            let result = try run(ninep, ["mount", "-f", "-o", option, "127.0.0.1:1", "/nonexistent-mountpoint"], timeout: .seconds(30))
            #expect(result.status != 0 && result.output.contains(message), "-o \(option): status \(result.status): \(result.output)")
        }
    }
}
