import Glibc
import Testing

/// Wall-clock bounds on how promptly something happens (an Rflush "well under a second", a
/// cancelled call returning, a shutdown). Where the thing timed is a timer of the code (the
/// client's call timeout and flush grace, the server's --client-timeout, a timed wait) the
/// tests bound it from below, which load cannot break; an upper bound on a shared machine
/// measures the load as much as the code. So phase 1 of scripts/test, where every suite runs
/// in parallel beside the others, checks what must happen and in what order (the reply comes,
/// nothing follows the Rflush, within a hang guard of seconds), and the bound is asserted in
/// the whole-system phase, where scripts/test runs the suites that measure latencies one at a
/// time with NINEP_LATENCY_BOUNDS=1.
public enum LatencyBounds {
    public static let enforced = getenv("NINEP_LATENCY_BOUNDS") != nil
}

/// Expects `measured` under `limit` where bounds are enforced; elsewhere an excess is only
/// printed.
public func expectPrompt(
    _ measured: Duration, under limit: Duration, _ what: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation
) {
    guard measured >= limit else { return }
    if LatencyBounds.enforced {
        Issue.record("\(what()) took \(ms(measured)) (limit \(ms(limit)))", sourceLocation: sourceLocation)
    } else {
        print("latency over its bound (asserted in the whole-system phase, NINEP_LATENCY_BOUNDS=1): \(what()) took \(ms(measured)), limit \(ms(limit))")
    }
}
