import Foundation
import NinePTestSupport
import Testing

/// `ninep mount`'s read-ahead of sequential READs with the kernel and a real ninepd, through
/// `scripts/fuse-readahead-check`: sequential and mixed reads byte for byte, a write and a
/// truncate through the mount between two reads seen by the next, a READ waiting on a
/// read-ahead of a stopped ninepd ended within 1 s of SIGINT and of SIGKILL, nothing held or
/// mounted afterwards. About 40 s.
@Suite(.serialized)
struct FuseReadAheadTests {
    @Test func readAheadIsExactAndInterruptible() throws {
        guard geteuid() == 0 else {
            print("FuseReadAheadTests: skipped (mounting FUSE needs root)")
            return
        }
        try expectCheckScriptPasses("fuse-readahead-check", timeout: .seconds(300))
    }
}
