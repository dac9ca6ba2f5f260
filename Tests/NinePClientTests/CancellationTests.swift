import Glibc
@testable import NinePClient
import NinePTestSupport
import NinePTransport
import NinePWire
import Synchronization
import Testing

/// Cancellation and timeouts against fake servers that settle a flushed request each way
/// flush(5) allows, or never.
@Suite(.serialized)
struct CancellationTests {
    /// A client with a short flush grace, as the scenarios below assume (250 ms).
    func connect(_ server: FakeServer, maxInFlight: Int = 32) async throws -> NinePClient {
        try await server.connect(msize: 65536, maxInFlight: maxInFlight, flushGrace: .milliseconds(250))
    }

    /// Waits (at most `limit`) until `condition` holds.

    @Test func replyBeforeRflushIsReturnedToTheCaller() async throws {
        try await withTaskExecutorPreference(timingExecutor) {
            // Twalk of one name is answered only when flushed: reply first, then Rflush.
            let server = try FakeServer { server, message in
                switch message.type {
                case .twalk where message.names == 1: break
                case .tflush:
                    server.rwalk(tag: message.oldtag!, names: 1)
                    server.rflush(tag: message.tag)
                default: server.answerNormally(message)
                }
            }
            defer { server.stop() }
            let client = try await connect(server)
            let walk = Task(executorPreference: timingExecutor) { try await client.walk("/slow") }
            try await Task.sleep(for: .milliseconds(100))
            walk.cancel()
            let file = try await walk.value
            let log = server.log
            let walked = try #require(log.last { $0.type == .twalk && $0.names == 1 })
            #expect(log.contains { $0.type == .tflush && $0.oldtag == walked.tag }, "no Tflush for the cancelled walk")
            #expect(file.qid.path == 100, "the walk's reply was not returned")
            await file.close()
            #expect(server.log.contains { $0.type == .tclunk && $0.fid == walked.newfid }, "closing the returned file sent no Tclunk")
            #expect(await eventually { client.tagsInUse == 0 })
        }
    }

    @Test func lateReplyAfterTheCallerLeftIsClunked() async throws {
        try await withTaskExecutorPreference(timingExecutor) {
            // The reply comes 600 ms after the Tflush (after the 250 ms grace), then Rflush.
            let server = try FakeServer { server, message in
                switch message.type {
                case .twalk where message.names == 1: break
                case .tflush:
                    runAfter(.milliseconds(600)) {
                        server.rwalk(tag: message.oldtag!, names: 1)
                        server.rflush(tag: message.tag)
                    }
                default: server.answerNormally(message)
                }
            }
            defer { server.stop() }
            let client = try await connect(server)
            let clock = ContinuousClock()
            let walk = Task(executorPreference: timingExecutor) { try await client.walk("/slow") }
            try await Task.sleep(for: .milliseconds(100))
            let cancelled = clock.now
            walk.cancel()
            await #expect(throws: CancellationError.self) { _ = try await walk.value }
            let waited = clock.now - cancelled
            expectPrompt(waited, under: .seconds(1), "cancellation")
            let walked = try #require(server.log.last { $0.type == .twalk && $0.names == 1 })
            #expect(client.tagsInUse == 2, "the walk's tag and its flush's tag stay reserved until Rflush")
            // The walk happened after all: its fid must not leak.
            #expect(await eventually { server.log.contains { $0.type == .tclunk && $0.fid == walked.newfid } }, "the fid of the late walk was not clunked")
            #expect(await eventually { client.tagsInUse == 0 })
            print("cancellation with a late reply: control back after \(waited); fid \(walked.newfid!) clunked after the late Rwalk")
        }
    }

    @Test func rflushWithoutReplyMeansTheWalkNeverHappened() async throws {
        try await withTaskExecutorPreference(timingExecutor) {
            let server = try FakeServer.withStuckWalks(answerFlushes: true)
            defer { server.stop() }
            let client = try await connect(server)
            let walk = Task(executorPreference: timingExecutor) { try await client.walk("/slow") }
            try await Task.sleep(for: .milliseconds(50))
            walk.cancel()
            await #expect(throws: CancellationError.self) { _ = try await walk.value }
            let walked = try #require(server.log.last { $0.type == .twalk && $0.names == 1 })
            #expect(await eventually { client.tagsInUse == 0 })
            // No clunk for a fid that was never made, and its number is reused.
            let file = try await client.walk("/ok/next")
            #expect(!server.log.contains { $0.type == .tclunk && $0.fid == walked.newfid })
            #expect(server.log.last { $0.type == .twalk }?.newfid == walked.newfid, "the unused fid number was not given back")
            await file.close()
        }
    }

    @Test func silentServerCancellationAndTimeoutReturnAndTagsStayReserved() async throws {
        try await withTaskExecutorPreference(timingExecutor) {
            // One-name walks and every Tflush go unanswered until the test says so.
            let server = try FakeServer.withStuckWalks(answerFlushes: false)
            defer { server.stop() }
            let client = try await connect(server)
            let clock = ContinuousClock()

            let walk = Task(executorPreference: timingExecutor) { try await client.walk("/stuck") }
            try await Task.sleep(for: .milliseconds(100))
            let cancelledAt = clock.now
            walk.cancel()
            await #expect(throws: CancellationError.self) { _ = try await walk.value }
            let cancelLatency = clock.now - cancelledAt

            let timedAt = clock.now
            do {
                _ = try await NinePClient.withCallTimeout(.milliseconds(300)) { try await client.walk("/stuck-too") }
                Issue.record("a walk that is never answered returned")
            } catch let error as NinePError {
                #expect(error.kind == .timedOut && error.errno == ETIMEDOUT && error.operation == .walk, "\(error)")
            }
            let timeoutLatency = clock.now - timedAt
            #expect(timeoutLatency >= .milliseconds(300), "the 300 ms call timeout ended the call after \(ms(timeoutLatency))")
            expectPrompt(cancelLatency, under: .seconds(1), "cancellation of a call the server never answers")
            expectPrompt(timeoutLatency, under: .seconds(1), "a 300 ms call timeout")

            let stuck = server.log.filter { $0.type == .twalk && $0.names == 1 }.map(\.tag)
            let flushes = server.log.filter { $0.type == .tflush }
            #expect(stuck.count == 2 && flushes.map(\.oldtag!) == stuck, "each stuck call was flushed once: \(flushes)")
            #expect(client.tagsInUse == 4, "two stuck requests and two flushes hold their tags: \(client.tagsInUse)")

            // The connection stays usable, and no new request reuses a reserved tag.
            let reserved = Set(stuck + flushes.map(\.tag))
            let before = server.log.count
            for _ in 0..<50 { _ = try await client.stat("/ok/file") }
            let later = server.log[before...]
            #expect(later.count == 150 && later.allSatisfy { !reserved.contains($0.tag) }, "a reserved tag was reused")

            // Rflush releases them; the stuck walks' fids were never made, so nothing is clunked.
            for flush in flushes { server.rflush(tag: flush.tag) }
            #expect(await eventually { client.tagsInUse == 0 }, "tags still in use after Rflush: \(client.tagsInUse)")
            print("silent server: cancel returned after \(cancelLatency), 300 ms timeout after \(timeoutLatency)")
        }
    }

    @Test func cancellingACallWaitingForASlotReturns() async throws {
        try await withTaskExecutorPreference(timingExecutor) {
            let server = try FakeServer.withStuckWalks(answerFlushes: true)
            defer { server.stop() }
            let client = try await connect(server, maxInFlight: 1)
            let holder = Task(executorPreference: timingExecutor) { try await client.walk("/stuck") }
            try await Task.sleep(for: .milliseconds(50))
            let waiter = Task(executorPreference: timingExecutor) { try await client.stat("/ok/file") }
            try await Task.sleep(for: .milliseconds(50))
            waiter.cancel()
            await #expect(throws: CancellationError.self) { _ = try await waiter.value }
            holder.cancel()
            await #expect(throws: CancellationError.self) { _ = try await holder.value }
            #expect(try await client.stat("/ok/file").size == 42, "the only slot did not come back")

        // A call that waits for a slot ends at its deadline too.
        let stuck = Task(executorPreference: timingExecutor) { try await client.walk("/stuck-again") }
        try await Task.sleep(for: .milliseconds(50))
        let clock = ContinuousClock()
        let began = clock.now
        do {
            _ = try await NinePClient.withCallTimeout(.milliseconds(200)) { try await client.stat("/ok/file") }
            Issue.record("a call behind a stuck one got a slot")
        } catch let error as NinePError {
            #expect(error.kind == .timedOut, "\(error)")
        }
        #expect(clock.now - began >= .milliseconds(200), "a call waiting for a slot ended before its 200 ms deadline")
        expectPrompt(clock.now - began, under: .seconds(1), "a call waiting for a slot with a 200 ms deadline")
        stuck.cancel()
        _ = try? await stuck.value
        }
    }

    @Test func aServerThatStopsReadingCannotHoldTheCaller() async throws {
        try await withTaskExecutorPreference(timingExecutor) {
            // The first Twrite makes the server stop reading until the test lets it go on, so
            // the socket fills up and later frames cannot be written whole.
            let release = Flag()
            let server = try FakeServer { server, message in
                if message.type == .twrite && !release.isSet {
                    for _ in 0..<1000 where !release.isSet { usleep(10_000) }
                }
                server.answerNormally(message)
            }
            defer { server.stop() }
            let client = try await server.connect(msize: 1 << 20, flushGrace: .milliseconds(250))
            let file = try await client.walk("/ok/file")
            let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: client.maxIOSize, alignment: 16)
            payload.initializeMemory(as: UInt8.self, repeating: 7)
            defer { payload.deallocate() }
            let bytes = Payload(bytes: UnsafeRawBufferPointer(payload))
            let writes = (0..<16).map { index in
                Task(executorPreference: timingExecutor) { try await file.write(bytes.bytes, at: UInt64(index) << 20) }
            }
            try await Task.sleep(for: .milliseconds(300))
            let arrived = server.log.filter { $0.type == .twrite }.count
            #expect(arrived < 16, "every frame reached the server: the socket never filled")
            let clock = ContinuousClock()
            let cancelled = clock.now
            for write in writes { write.cancel() }
            for write in writes { _ = try? await write.value }
            let latency = clock.now - cancelled
            expectPrompt(latency, under: .seconds(1), "cancelled writes stuck behind a full socket")
            // Let the server read again: the queued frames and the flushes follow, whole.
            release.set()
            #expect(try await file.stat().size == 42, "the connection did not recover")
            let deadline = ContinuousClock.now + .seconds(3)
            while client.tagsInUse > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(client.tagsInUse == 0, "tags still reserved: \(client.tagsInUse)")
            #expect(server.log.filter { $0.type == .twrite }.allSatisfy { $0.size == client.maxIOSize }, "a frame arrived torn")
            print("server stopped reading with \(arrived) of 16 writes received: 16 cancelled writes returned after \(latency)")
        }
    }

    @Test func connectingToASilentPeerEndsAtTheTimeout() async throws {
        // A listener that never accepts: TCP connects, Tversion goes out, nothing comes back.
        let listener = try Listener(.tcp(host: "127.0.0.1", port: 0))
        defer { listener.close() }
        let configuration = ClientConfiguration(
            address: .tcp(host: "127.0.0.1", port: listener.boundPort), uname: "test", uid: 0, callTimeout: .milliseconds(300))
        let clock = ContinuousClock()
        let began = clock.now
        do {
            _ = try await NinePClient.connect(configuration)
            Issue.record("connected to a peer that never answered Tversion")
        } catch let error as NinePError {
            #expect(error.operation == .version, "\(error)")
        }
        #expect(clock.now - began >= .milliseconds(300), "connect gave up before its 300 ms timeout")
        expectPrompt(clock.now - began, under: .seconds(2), "connecting with a 300 ms timeout to a peer that never answers")
    }

    @Test func cancellingAConnectToASilentPeerStopsWaitingAtOnce() async throws {
        // Connected (the kernel's backlog), Tversion sent, nothing comes back; no timeout: only
        // cancellation can end the wait, and it must not wait for the blocked handshake thread.
        let listener = try Listener(.tcp(host: "127.0.0.1", port: 0))
        defer { listener.close() }
        let configuration = ClientConfiguration(
            address: .tcp(host: "127.0.0.1", port: listener.boundPort), uname: "test", uid: 0, callTimeout: nil)
        let attempt = Task { try await NinePClient.connect(configuration) }
        try await Task.sleep(for: .milliseconds(300))
        let clock = ContinuousClock()
        let began = clock.now
        attempt.cancel()
        do {
            _ = try await attempt.value
            Issue.record("connected to a peer that never answered Tversion")
        } catch {
            #expect(error is CancellationError, "a cancelled connect ends with CancellationError, not \(error)")
        }
        expectPrompt(clock.now - began, under: .milliseconds(500), "cancelling a connect blocked in the Tversion exchange")
    }

    @Test func connectionLossFailsEveryWaiter() async throws {
        try await withTaskExecutorPreference(timingExecutor) {
            let server = try FakeServer { server, message in
                if !(message.type == .twalk && message.names == 1) { server.answerNormally(message) }
            }
            defer { server.stop() }
            let client = try await connect(server)
            let clock = ContinuousClock()
            let calls = (0..<10).map { index in Task(executorPreference: timingExecutor) { try await client.walk("/stuck-\(index)") } }
            try await Task.sleep(for: .milliseconds(100))
            let dropped = clock.now
            server.dropConnection()
            for call in calls {
                do {
                    _ = try await call.value
                    Issue.record("a call survived the connection")
                } catch let error as NinePError {
                    #expect(error.kind == .connectionLost && error.errno == ECONNRESET, "\(error)")
                }
            }
            expectPrompt(clock.now - dropped, under: .seconds(1), "failing every waiter once the connection dropped")
            do {
                _ = try await client.stat("/ok/file")
                Issue.record("a call on a closed connection succeeded")
            } catch let error as NinePError {
                #expect(error.kind == .connectionLost)
            }
        }
    }
}

/// A read-only buffer handed to several tasks. `@unchecked Sendable`: nobody writes it while
/// the tasks run.
struct Payload: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
}
