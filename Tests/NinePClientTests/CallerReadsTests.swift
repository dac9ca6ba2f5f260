import Glibc
import NinePTestSupport
import NinePWire
import Testing

@testable import NinePClient

/// `ClientConfiguration.callersRead`: callers bound to `CallerReads.$allowed`, each on a thread
/// of its own (a `ClientExecutor` per caller here, as the FUSE mount's workers), read their own
/// replies while nobody else reads; everyone else is answered through the reader thread.
@Suite(.serialized)
struct CallerReadsTests {

    @Test func leadingAndOrdinaryCallersTogetherGetEveryAnswerRight() async throws {
        let server = try InProcessNinepd()
        defer { server.stop() }
        for index in 0..<4 { makeFile(server.server("f\(index)"), Array(repeating: 7, count: index + 1)) }
        var configuration = ClientConfiguration(address: server.address, uname: "root", aname: "", uid: 0, msize: 65536, maxInFlight: 8)
        configuration.callersRead = true
        // localio (offered on this unix socket) keeps the reader thread reading: off here.
        configuration.localIO = .disabled
        let client = try await NinePClient.connect(configuration, connectedSocket: try server.connectedSocket())
        defer { client.close() }
        let executors = (0..<4).map { ClientExecutor(name: "test-lead-\($0)") }
        defer { for executor in executors { executor.stop() } }
        // Alone: the caller finds nobody reading, and reads its own replies.
        let alone = try await Task(executorPreference: executors[0]) {
            try await CallerReads.$allowed.withValue(true) {
                var wrong = 0
                for _ in 0..<100 where try await client.stat("/f2").size != 3 { wrong += 1 }
                return wrong
            }
        }.value
        #expect(alone == 0)
        let ledAlone = client.connection.callsLed.load(ordering: .relaxed)
        #expect(ledAlone >= 100, "only \(ledAlone) of the lone caller's 100 stats' calls read their own replies")
        // Together with others: whoever finds nobody reading reads; every answer is right.
        let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<4 {
                group.addTask(executorPreference: executors[index]) {
                    try await CallerReads.$allowed.withValue(true) {
                        var wrong = 0
                        for _ in 0..<300 where try await client.stat("/f\(index)").size != UInt64(index + 1) { wrong += 1 }
                        return wrong
                    }
                }
            }
            group.addTask {
                var wrong = 0
                for _ in 0..<300 where try await client.stat("/f0").size != 1 { wrong += 1 }
                return wrong
            }
            return try await group.reduce(0, +)
        }
        #expect(wrong == 0, "\(wrong) of 1,500 stats answered with another file's size")
        print("caller reads: \(ledAlone) calls led alone, \(client.connection.callsLed.load(ordering: .relaxed) - ledAlone) among 5 callers")
        #expect(await eventually { client.tagsInUse == 0 }, "tags still in use: \(client.tagsInUse)")
        // The socket went back to nobody: an ordinary caller still gets its answer.
        #expect(try await client.stat("/f3").size == 4)
    }

    @Test func aLeaderWhoseCallIsAbandonedHandsTheSocketBack() async throws {
        // One-name walks and every Tflush go unanswered until the test says so.
        let server = try FakeServer.withStuckWalks(answerFlushes: false)
        defer { server.stop() }
        let client = try await server.connect(msize: 65536, flushGrace: .milliseconds(250), callersRead: true)
        let executor = ClientExecutor(name: "test-lead")
        defer { executor.stop() }
        let walk = Task(executorPreference: executor) { try await CallerReads.$allowed.withValue(true) { try await client.walk("/stuck") } }
        // Waited for, not slept: beside the other suites the walk's thread may start late.
        #expect(await eventually { client.connection.callsLed.load(ordering: .relaxed) >= 1 }, "the walk did not read the socket itself")
        #expect(await eventually { server.log.contains { $0.type == .twalk && $0.names == 1 } })
        let clock = ContinuousClock()
        let cancelledAt = clock.now
        walk.cancel()
        await #expect(throws: CancellationError.self) { _ = try await walk.value }
        expectPrompt(clock.now - cancelledAt, under: .seconds(1), "cancellation of a leading call the server never answers")
        // Leading and ordinary calls are answered afterwards.
        let led = Task(executorPreference: executor) { try await CallerReads.$allowed.withValue(true) { try await client.stat("/ok/file") } }
        _ = try await led.value
        _ = try await client.stat("/ok/file")
        let flushes = server.log.filter { $0.type == .tflush }
        #expect(flushes.count == 1)
        for flush in flushes { server.rflush(tag: flush.tag) }
        #expect(await eventually { client.tagsInUse == 0 }, "tags still in use after Rflush: \(client.tagsInUse)")
    }

    @Test func aLeaderLearnsAtOnceThatTheConnectionIsLost() async throws {
        let server = try FakeServer.withStuckWalks(answerFlushes: false)
        defer { server.stop() }
        let client = try await server.connect(msize: 65536, callersRead: true)
        let executor = ClientExecutor(name: "test-lead")
        defer { executor.stop() }
        let walk = Task(executorPreference: executor) { try await CallerReads.$allowed.withValue(true) { try await client.walk("/stuck") } }
        try await Task.sleep(for: .milliseconds(100))
        let clock = ContinuousClock()
        let droppedAt = clock.now
        server.dropConnection()
        do {
            _ = try await walk.value
            Issue.record("a walk on a dropped connection returned")
        } catch let error as NinePError {
            #expect(error.kind == .connectionLost, "\(error)")
        }
        expectPrompt(clock.now - droppedAt, under: .seconds(1), "a leading call on a dropped connection")
    }
}
