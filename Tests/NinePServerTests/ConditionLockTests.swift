import Glibc
@testable import NinePMemory
import NinePTestSupport
import Testing

/// Timed waits measure on CLOCK_MONOTONIC. What they guard against, a wall-clock step (NTP,
/// `date -s`, a VM resumed) turning a 50 ms poll into hours or into no wait at all, cannot be
/// tested here: stepping CLOCK_REALTIME needs CAP_SYS_TIME and would disturb everything else on
/// the machine, and a time namespace offsets only the monotonic and boot clocks. So these tests
/// check that deadlines are taken on the monotonic clock, and that the condition variables
/// measure them on the same clock (a mismatch either returns at once or waits for decades).
@Suite struct ConditionLockTests {
    @Test func deadlinesAreOnTheMonotonicClock() {
        let deadline = ConditionLock.deadline(afterMilliseconds: 1500)
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let ahead = (Int(deadline.tv_sec) - Int(now.tv_sec)) * 1_000_000_000 + Int(deadline.tv_nsec) - Int(now.tv_nsec)
        #expect(ahead > 1_000_000_000 && ahead <= 1_500_000_000, "deadline \(ahead) ns ahead of CLOCK_MONOTONIC, want 1.5 s")
        #expect(deadline.tv_nsec >= 0 && deadline.tv_nsec < 1_000_000_000)
    }

    @Test func aTimedWaitLastsItsTime() {
        let lock = ConditionLock()
        let elapsed = ContinuousClock().measure {
            lock.withLock { lock.wait(milliseconds: 100) }
        }
        #expect(elapsed >= .milliseconds(100) && elapsed < .seconds(5), "wait(milliseconds: 100) took \(elapsed)")
    }

    @Test func aTimedWaitOnAConditionVariableLastsItsTime() {
        let lock = ConditionLock()
        let variable = ConditionVariable()
        let elapsed = ContinuousClock().measure {
            lock.withLock { lock.wait(on: variable, milliseconds: 100) }
        }
        #expect(elapsed >= .milliseconds(100) && elapsed < .seconds(5), "wait(on:milliseconds: 100) took \(elapsed)")
    }
}
