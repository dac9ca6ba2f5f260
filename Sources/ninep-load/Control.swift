import Glibc
import NinePTransport

/// The bounds every run of this tool keeps: a watchdog that ends the process after
/// --max-seconds whatever it is doing, and the commands a controlling script sends on stdin.
enum Control {
    /// Exits with status 3 after `seconds` (a script that stopped talking to us, a server
    /// that stopped answering past every timeout): no run outlives its bound.
    static func startWatchdog(seconds: Double, name: String) {
        DaemonThread.start(name: "watchdog") {
            sleepSeconds(seconds)
            writeLine("ninep-load \(name): still running after --max-seconds \(Int(seconds)); exiting", to: 2)
            _exit(3)
        }
    }

    /// The next command on stdin, split into words; nil at end of input.
    static func nextCommand() -> [String]? {
        while let line = readLine(strippingNewline: true) {
            let words = line.split(separator: " ").map(String.init)
            if !words.isEmpty { return words }
        }
        return nil
    }
}

func sleepSeconds(_ seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var left = timespec()
    while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
}

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
