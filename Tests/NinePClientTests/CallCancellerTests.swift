import Glibc
@testable import NinePClient
import NinePTestSupport
import NinePWire
import Testing

/// The explicit cancellation handle (`CallCanceller`), as the FUSE mount's workers use it: the
/// task is never cancelled, the handle is, and the call behaves as for a cancelled task.
@Suite(.serialized)
struct CallCancellerTests {

    @Test func cancellingTheHandleFlushesTheCallAndReturnsAfterTheGrace() async throws {
        try await withTaskExecutorPreference(timingExecutor) {
            // One-name walks and Tflushes go unanswered: the call returns after the flush grace.
            let server = try FakeServer.withStuckWalks(answerFlushes: false)
            defer { server.stop() }
            let client = try await server.connect(msize: 65536, maxInFlight: 4, flushGrace: .milliseconds(250))
            let canceller = CallCanceller()
            let worker = Task(executorPreference: timingExecutor) {
                try await CallCanceller.$current.withValue(canceller) { try await client.walk("/stuck") }
            }
            try await Task.sleep(for: .milliseconds(100))
            let clock = ContinuousClock()
            let began = clock.now
            canceller.cancel()
            await #expect(throws: CancellationError.self) { _ = try await worker.value }
            expectPrompt(clock.now - began, under: .seconds(1), "a handle-cancelled call the server never answers")
            let stuck = try #require(server.log.last { $0.type == .twalk && $0.names == 1 })
            #expect(server.log.contains { $0.type == .tflush && $0.oldtag == stuck.tag }, "no Tflush for the cancelled walk")
            // The task itself was never cancelled; later calls with the handle still cancelled
            // fail at once, and after reset they go through.
            let again = Task(executorPreference: timingExecutor) { () async throws -> UInt64 in
                try await CallCanceller.$current.withValue(canceller) {
                    do {
                        _ = try await client.stat("/ok/file")
                        Issue.record("a call with a cancelled handle went out")
                    } catch is CancellationError {}
                    canceller.reset()
                    return try await client.stat("/ok/file").size
                }
            }
            #expect(try await again.value == 42)
            // Rflush frees the stuck walk's tag and its flush's.
            for flush in server.log.filter({ $0.type == .tflush }) { server.rflush(tag: flush.tag) }
            #expect(await eventually { client.tagsInUse == 0 }, "tags still in use: \(client.tagsInUse)")
        }
    }

    @Test func cancellingTheHandleWakesACallWaitingForASlot() async throws {
        try await withTaskExecutorPreference(timingExecutor) {
            let server = try FakeServer.withStuckWalks(answerFlushes: true)
            defer { server.stop() }
            let client = try await server.connect(msize: 65536, maxInFlight: 1, flushGrace: .milliseconds(250))
            let holder = Task(executorPreference: timingExecutor) { try await client.walk("/stuck") }
            try await Task.sleep(for: .milliseconds(50))
            let canceller = CallCanceller()
            let waiter = Task(executorPreference: timingExecutor) {
                try await CallCanceller.$current.withValue(canceller) { try await client.stat("/ok/file") }
            }
            try await Task.sleep(for: .milliseconds(50))
            canceller.cancel()
            await #expect(throws: CancellationError.self) { _ = try await waiter.value }
            holder.cancel()
            await #expect(throws: CancellationError.self) { _ = try await holder.value }
            #expect(try await client.stat("/ok/file").size == 42, "the only slot did not come back")
        }
    }
}
