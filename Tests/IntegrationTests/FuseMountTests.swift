import Foundation
import NinePTestSupport
import Testing

/// `ninep mount` end to end (issue 13), through `scripts/fuse-mount-check`: ninepd on a
/// temporary export, `ninep mount -f` as a process of its own (a hung daemon can never hang the
/// test runner: the script aborts its FUSE connection and detaches the mount), then listings,
/// reads, writes and interrupts through the mount compared with the export, `ninep umount`, and
/// nothing left mounted.
@Suite(.serialized)
struct FuseMountTests {
    @Test func mountReadsListsWritesAndUnmountsCleanly() throws {
        guard geteuid() == 0 else {
            print("FuseMountTests: skipped (mounting FUSE needs root)")
            return
        }
        try check(server: "ninepd")
    }

    /// The same against diod (attach name: the export; no Trenameat or Tunlinkat, path-based fids).
    @Test func sameAgainstDiod() throws {
        guard geteuid() == 0, FileManager.default.fileExists(atPath: "/usr/sbin/diod") else {
            print("FuseMountTests: diod run skipped (needs root and Debian's diod)")
            return
        }
        try check(server: "diod")
    }

    /// Mounting as an ordinary user through fusermount3, the mount.ninep helper as mount(8)
    /// runs it for /etc/fstab, and the cache modes, through `scripts/fuse-mount-modes-check`.
    @Test func userMountsFstabHelperAndCacheModes() throws {
        guard geteuid() == 0 else {
            print("FuseMountTests: modes skipped (the check starts the user's mount as root)")
            return
        }
        try expectCheckScriptPasses("fuse-mount-modes-check", timeout: .seconds(240))
    }

    func check(server: String) throws {
        try expectCheckScriptPasses("fuse-mount-check", ["--server", server], timeout: .seconds(300))
    }
}
