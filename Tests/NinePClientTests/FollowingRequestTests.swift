import Glibc
import NinePTestSupport
import NinePWire
import Synchronization
import Testing

@testable import NinePClient

/// `RemoteFile.createAndStat` and `walkFidAndStat`: Tgetattr goes on the wire right behind
/// Tlcreate or Twalk (one round trip for both, `ClientConnection+Following`); its answer counts
/// only when its qid is the new file's, and a follower left behind (create refused, name not
/// there, caller cancelled) frees its tag.
///
/// Each scenario runs with the reader thread reading replies and with the caller reading its
/// own (`CallerReads`, as the FUSE mount's workers do), whose leading loop waits for both.
@Suite(.timeLimit(.minutes(1))) struct FollowingRequestTests {
    static let created = Qid(type: 0, version: 0, path: 500)
    static let directory = Qid(type: Qid.typeDir, version: 0, path: 1)

    /// Tags the scenarios hold back, by request type.
    final class Held: Sendable {
        let tags = Mutex<[MessageType: UInt16]>([:])
        func hold(_ message: FakeServer.Received) { tags.withLock { $0[message.type] = message.tag } }
        func take(_ type: MessageType) -> UInt16? { tags.withLock { $0.removeValue(forKey: type) } }
    }


    /// Runs `body` as the scenario's caller: on a thread of its own and reading its own
    /// replies (`leading`), or as an ordinary task.
    func asCaller<R: Sendable>(leading: Bool, _ body: @escaping @Sendable () async throws -> R) async throws -> R {
        guard leading else { return try await body() }
        let executor = ClientExecutor(name: "test-follow")
        defer { executor.stop() }
        return try await Task(executorPreference: executor) { try await CallerReads.$allowed.withValue(true) { try await body() } }.value
    }

    /// Runs `attempt` `times` times as the scenario's caller; how many failed with `errno`.
    func failures(_ times: Int, leading: Bool, errno: Int32, _ attempt: @escaping @Sendable () async throws -> Void) async throws -> Int {
        try await asCaller(leading: leading) {
            var failures = 0
            for _ in 0..<times {
                do {
                    try await attempt()
                } catch let error as NinePError where error.errno == errno {
                    failures += 1
                }
            }
            return failures
        }
    }

    @Test(arguments: [false, true], [false, true])
    func theGetattrGoesOutBeforeTheCreateIsAnsweredAndCountsOnlyForTheNewFile(leading: Bool, runFirst: Bool) async throws {
        // Rlcreate is sent only once the Tgetattr has arrived: a client that waited for it
        // before sending the Tgetattr would wait for ever (bounded by the suite's time limit).
        // With `runFirst` the server answers the Tgetattr before the Tlcreate, as it may: the
        // fid was still the directory's, and so is the qid; the client must not take those
        // attributes, and asks again.
        let held = Held()
        let server = try FakeServer { server, message in
            switch message.type {
            case .tlcreate: held.hold(message)
            case .tgetattr:
                guard let create = held.take(.tlcreate) else {
                    server.rgetattr(tag: message.tag, size: 0, qid: Self.created)
                    return
                }
                if runFirst {
                    server.rgetattr(tag: message.tag, size: 4096, qid: Self.directory)
                    server.rlcreate(tag: create, qid: Self.created)
                } else {
                    server.rlcreate(tag: create, qid: Self.created)
                    server.rgetattr(tag: message.tag, size: 0, qid: Self.created)
                }
            default: server.answerNormally(message)
            }
        }
        defer { server.stop() }
        let client = try await server.connect(callersRead: leading)
        defer { client.close() }
        let directory = try await client.walk("/d")
        let (qid, attributes) = try await asCaller(leading: leading) {
            try await directory.createAndStat(ByteView(static: "new"), flags: 0o1, mode: 0o644, gid: 0)
        }
        #expect(qid == Self.created)
        #expect(attributes.qid == Self.created && attributes.size == 0 && !attributes.isDirectory, "took the directory's attributes: \(attributes)")
        let requests = server.log.map(\.type).filter { $0 == .tlcreate || $0 == .tgetattr }
        #expect(requests == (runFirst ? [.tlcreate, .tgetattr, .tgetattr] : [.tlcreate, .tgetattr]), "\(requests)")
        if leading { #expect(client.connection.callsLed.load(ordering: .relaxed) >= 1, "the caller did not read its own replies") }
        #expect(await eventually { client.tagsInUse == 0 }, "tags still in use: \(client.tagsInUse)")
    }

    @Test(arguments: [false, true])
    func aRefusedCreateGivesItsFollowersTagBack(leading: Bool) async throws {
        let server = try FakeServer { server, message in
            switch message.type {
            case .tlcreate: server.rlerror(tag: message.tag, UInt32(EEXIST))
            default: server.answerNormally(message)
            }
        }
        defer { server.stop() }
        let client = try await server.connect(maxInFlight: 4, callersRead: leading)
        defer { client.close() }
        let directory = try await client.walk("/d")
        // More refusals than slots: a follower's slot that was never given back would leave
        // the later creates waiting for one (bounded by the test's own limit).
        let failures = try await failures(20, leading: leading, errno: EEXIST) {
            _ = try await directory.createAndStat(ByteView(static: "there"), flags: 0o1, mode: 0o644, gid: 0)
        }
        #expect(failures == 20)
        #expect(await eventually { client.tagsInUse == 0 }, "tags still in use: \(client.tagsInUse)")
        #expect(!server.log.contains { $0.type == .tflush }, "a refused create's follower was flushed, not awaited")
    }

    @Test(arguments: [false, true])
    func aWalkAndItsGetattrTakeOneRoundTripAndAGetattrRunFirstIsAskedAgain(leading: Bool) async throws {
        // Rwalk is sent only once the Tgetattr of the new fid has arrived. The first time, the
        // server answers that Tgetattr first, as if it had run before the walk made the fid
        // (an error); the second time in order.
        let held = Held()
        let answered = Mutex(0)
        let server = try FakeServer { server, message in
            switch message.type {
            case .twalk where message.names == 1 && message.fid != 0 && message.newfid != nil: held.hold(message)
            case .tgetattr:
                guard let walk = held.take(.twalk) else {
                    server.rgetattr(tag: message.tag, size: 7, qid: Self.created)
                    return
                }
                let first = answered.withLock { count in
                    defer { count += 1 }
                    return count == 0
                }
                if first {
                    server.rlerror(tag: message.tag, UInt32(EBADF))
                    server.reply(tag: walk) { w, tag in
                        try w.beginRwalk(tag: tag); try w.qid(Self.created); w.finishRwalk(count: 1)
                    }
                } else {
                    server.reply(tag: walk) { w, tag in
                        try w.beginRwalk(tag: tag); try w.qid(Self.created); w.finishRwalk(count: 1)
                    }
                    server.rgetattr(tag: message.tag, size: 7, qid: Self.created)
                }
            default: server.answerNormally(message)
            }
        }
        defer { server.stop() }
        let client = try await server.connect(callersRead: leading)
        defer { client.close() }
        let directory = try await client.walk("/d")
        for round in 0..<2 {
            let before = server.log.count
            let (walked, attributes) = try await asCaller(leading: leading) { try await directory.walkFidAndStat(ByteView(static: "there")) }
            #expect(walked.qid == Self.created && attributes.qid == Self.created && attributes.size == 7)
            let requests = server.log[before...].map(\.type).filter { $0 == .twalk || $0 == .tgetattr }
            #expect(requests == (round == 0 ? [.twalk, .tgetattr, .tgetattr] : [.twalk, .tgetattr]), "round \(round): \(requests)")
            await directory.discard(walked)
        }
        #expect(await eventually { client.tagsInUse == 0 }, "tags still in use: \(client.tagsInUse)")
    }

    @Test func aServerThatRunsFollowersFirstGetsNoMoreOfThem() async throws {
        // Like diod (a thread pool per connection): every Tgetattr of a walk's new fid is run
        // before the walk, and answered with an error. A walk with no Tgetattr behind it is
        // answered after 20 ms.
        let held = Held()
        let server = try FakeServer { server, message in
            switch message.type {
            case .twalk where message.names == 1 && message.fid != 0:
                held.hold(message)
                Task {
                    try? await Task.sleep(for: .milliseconds(20))
                    if let walk = held.take(.twalk) { server.rwalk(tag: walk, names: 1) }
                }
            case .tgetattr:
                if let walk = held.take(.twalk) {
                    server.rlerror(tag: message.tag, UInt32(EBADF))
                    server.rwalk(tag: walk, names: 1)
                } else {
                    server.rgetattr(tag: message.tag, size: 7, qid: Qid(type: 0, version: 0, path: 100))
                }
            default: server.answerNormally(message)
            }
        }
        defer { server.stop() }
        let client = try await server.connect()
        defer { client.close() }
        let directory = try await client.walk("/d")
        let before = server.log.count
        for _ in 0..<10 {
            let (walked, attributes) = try await directory.walkFidAndStat(ByteView(static: "there"))
            #expect(attributes.size == 7)
            await directory.discard(walked)
        }
        #expect(!client.followers.on, "followers still sent to a server that runs them first")
        // Four walks with a follower (each then asked again), six without.
        let getattrs = server.log[before...].filter { $0.type == .tgetattr }.count
        #expect(getattrs == 4 * 2 + 6, "\(getattrs) Tgetattrs for 10 walks")
        #expect(await eventually { client.tagsInUse == 0 }, "tags still in use: \(client.tagsInUse)")
    }

    @Test(arguments: [false, true])
    func aNameNotThereGivesItsFollowersTagBack(leading: Bool) async throws {
        let server = try FakeServer { server, message in
            switch message.type {
            case .twalk where message.names == 1 && message.fid != 0: server.rlerror(tag: message.tag, UInt32(ENOENT))
            case .tgetattr: server.rlerror(tag: message.tag, UInt32(EBADF))
            default: server.answerNormally(message)
            }
        }
        defer { server.stop() }
        let client = try await server.connect(maxInFlight: 4, callersRead: leading)
        defer { client.close() }
        let directory = try await client.walk("/d")
        let missing = try await failures(20, leading: leading, errno: ENOENT) {
            _ = try await directory.walkFidAndStat(ByteView(static: "absent"))
        }
        #expect(missing == 20)
        #expect(await eventually { client.tagsInUse == 0 }, "tags still in use: \(client.tagsInUse)")
        #expect(!server.log.contains { $0.type == .tflush })
    }

    @Test(arguments: [false, true])
    func aFollowerTheServerNeverAnswersEndsWithItsCaller(leading: Bool) async throws {
        // Rlcreate comes, Rgetattr never: cancelling the caller ends the wait (a FUSE INTERRUPT
        // does the same through a CallCanceller) and flushes the Tgetattr.
        let server = try FakeServer { server, message in
            switch message.type {
            case .tlcreate: server.rlcreate(tag: message.tag, qid: Self.created)
            case .tgetattr: break
            default: server.answerNormally(message)
            }
        }
        defer { server.stop() }
        let client = try await server.connect(callersRead: leading)
        defer { client.close() }
        let directory = try await client.walk("/d")
        let executor = ClientExecutor(name: "test-follow-cancel")
        defer { executor.stop() }
        let create = Task(executorPreference: leading ? executor : nil) {
            try await CallerReads.$allowed.withValue(leading) {
                try await directory.createAndStat(ByteView(static: "new"), flags: 0o1, mode: 0o644, gid: 0)
            }
        }
        #expect(await eventually { server.log.contains { $0.type == .tgetattr } })
        try await Task.sleep(for: .milliseconds(50))
        let clock = ContinuousClock()
        let cancelledAt = clock.now
        create.cancel()
        let outcome = await create.result
        let waited = clock.now - cancelledAt
        guard case let .failure(error) = outcome else {
            Issue.record("the create returned although its Tgetattr was never answered")
            return
        }
        #expect(error is CancellationError, "\(error)")
        // Stated margin: the flush grace is 250 ms, a leading caller polls every 20 ms.
        expectPrompt(waited, under: .seconds(1), "a create cancelled while its Tgetattr is unanswered")
        let getattr = server.log.first { $0.type == .tgetattr }!.tag
        #expect(await eventually { server.log.contains { $0.type == .tflush && $0.oldtag == getattr } }, "no Tflush for the abandoned Tgetattr")
        #expect(await eventually { client.tagsInUse == 0 }, "tags still in use: \(client.tagsInUse)")
    }
}
