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
        let script = Paths.packageRoot.appendingPathComponent("scripts/fuse-mount-check").path
        let result = try run("/usr/bin/python3", [script, "--bin-dir", Paths.ninepd.deletingLastPathComponent().path], timeout: .seconds(300))
        #expect(result.status == 0, "fuse-mount-check: \(result.output.suffix(6000))")
        #expect(result.output.contains(" passed, 0 failed"), "\(result.output.suffix(6000))")
    }
}
