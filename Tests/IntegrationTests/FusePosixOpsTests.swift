import Foundation
import NinePTestSupport
import Testing

/// READDIRPLUS and POSIX lock owners through a real mount (issue 13), by
/// `scripts/fuse-posixops-check`: `ls -l` of 1,000 files served by READDIRPLUS with the
/// server's attributes and every counted lookup forgotten after drop_caches; one process's two
/// descriptors are one lock owner, a forked child is another, a blocked F_SETLKW yields to
/// SIGINT within 1 s, and no lock owner fid is left. The mount daemon is a process of its own.
@Suite(.serialized)
struct FusePosixOpsTests {
    @Test func readdirplusAndLockOwnersAgainstNinepd() throws {
        guard geteuid() == 0 else {
            print("FusePosixOpsTests: skipped (mounting FUSE needs root)")
            return
        }
        try check(server: "ninepd")
    }

    /// The lock owner checks against diod (it holds Tlock locks per fid too).
    @Test func lockOwnersAgainstDiod() throws {
        guard geteuid() == 0, FileManager.default.fileExists(atPath: "/usr/sbin/diod") else {
            print("FusePosixOpsTests: diod run skipped (needs root and Debian's diod)")
            return
        }
        try check(server: "diod")
    }

    func check(server: String) throws {
        try expectCheckScriptPasses("fuse-posixops-check", ["--server", server], timeout: .seconds(300))
    }
}
