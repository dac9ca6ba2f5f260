import Foundation
import NinePTestSupport
import Testing

/// `ninep mount` across a ninepd SIGKILL and restart on the same port and export, through
/// `scripts/fuse-reconnect-check`: the blocked reader gets EIO within 1 s, calls during the
/// outage fail at once, the mount reconnects, a file opened before reads correctly, a file
/// replaced meanwhile gives EIO, and nothing is left mounted. About 3 s.
@Suite(.serialized)
struct FuseReconnectTests {
    @Test func mountSurvivesAServerRestart() throws {
        guard geteuid() == 0 else {
            print("FuseReconnectTests: skipped (mounting FUSE needs root)")
            return
        }
        try expectCheckScriptPasses("fuse-reconnect-check", timeout: .seconds(120))
    }
}
