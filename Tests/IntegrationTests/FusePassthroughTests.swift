import Foundation
import NinePTestSupport
import Testing

/// `ninep mount` with localio (issue 15, docs/LOCALIO.md "ninep mount"), through
/// `scripts/fuse-passthrough-check`: ninepd on a unix socket and on TCP with its metrics, the
/// mount daemon a process of its own. Passthrough on: reads, writes, creates and mmap reach the
/// server's file byte-exact with no FUSE READ/WRITE at the daemon and no Tread/Twrite at the
/// server; a read-only open cannot write, and a read-write open of an inode whose backing is
/// read-only writes through the daemon; O_DIRECT opens; cache=none sees the server's changes at
/// once; with allow_other, other users' opens go through the daemon; passthrough off and TCP
/// move the data as Tread and Twrite; an ordinary user's mount (no CAP_SYS_ADMIN) reads and
/// writes the grants in the daemon; `-o passthrough=on` where it cannot be had is refused with
/// the reason; nothing left mounted.
@Suite(.serialized)
struct FusePassthroughTests {
    @Test func passthroughWorkerGrantsAnd9P() throws {
        guard geteuid() == 0 else {
            print("FusePassthroughTests: skipped (FUSE passthrough needs root)")
            return
        }
        try expectCheckScriptPasses("fuse-passthrough-check", timeout: .seconds(300))
    }
}
