import Glibc
@testable import NinePClient
import NinePTestSupport
import NinePTransport
import NinePWire
import Synchronization
import Testing

/// `ClientConfiguration.reconnect` against ninepd in this process, listening on a unix socket
/// that a restarted server takes over (same export, same path): fids come back when they reach
/// the same file, and break (never rebind) when they do not.
@Suite(.serialized)
struct ReconnectTests {
    /// A ninepd that can be stopped and started again on the same socket and export.
    final class RestartableServer {
        let export: TempDirectory
        let socket: String
        private(set) var server: TestServer?

        init() throws {
            export = try TempDirectory(prefix: "ninep-reconnect")
            socket = export.path + ".sock"
            try start()
        }

        func start() throws {
            let path = export.path
            let socket = self.socket
            server = try TestServer { configuration in
                configuration.exportPath = path
                configuration.listen = [.unix(path: socket)]
            }
        }

        func stop() {
            server?.shutdown()
            server = nil
            unlink(socket)
        }

        func callAsFunction(_ name: String) -> String { export.path + "/" + name }
    }

    /// What the client reported, for the test to wait on.
    final class Events: Sendable {
        let seen = Mutex<[String]>([])
        func record(_ event: ReconnectEvent) {
            let text: String
            switch event {
            case .lost: text = "lost"
            case let .attemptFailed(error): text = "failed \(error.errno)"
            case let .reconnected(rewalked, broken): text = "reconnected \(rewalked) \(broken)"
            }
            seen.withLock { $0.append(text) }
        }

        /// The last "reconnected" line within `limit`, or nil.
        func reconnected(within limit: Duration) -> String? {
            var found: String? = nil
            _ = waitUntil(within: limit, pollingEvery: .milliseconds(5)) {
                found = seen.withLock { $0.last { $0.hasPrefix("reconnected") } }
                return found != nil
            }
            return found
        }

        func lost(within limit: Duration) -> Bool {
            waitUntil(within: limit, pollingEvery: .milliseconds(5)) { seen.withLock { $0.contains("lost") } }
        }
    }

    func connect(_ peer: RestartableServer, _ events: Events) async throws -> NinePClient {
        var configuration = ClientConfiguration(
            address: .unix(path: peer.socket), uname: "root", uid: 0, msize: 256 * 1024, callTimeout: .seconds(5))
        configuration.reconnect = ReconnectPolicy(firstDelay: .milliseconds(20), maxDelay: .milliseconds(200)) { events.record($0) }
        return try await NinePClient.connect(configuration)
    }

    func errno(of body: () async throws -> Void) async -> Int32? {
        do {
            try await body()
            return nil
        } catch let error as NinePError {
            return error.errno
        } catch {
            return -1
        }
    }

    @Test func walkedAndOpenFidsSurviveARestartAndReadTheSameData() async throws {
        let peer = try RestartableServer()
        defer { peer.stop() }
        makeFile(peer("a"), Array("alpha".utf8))
        try FileManagerLite.mkdir(peer("dir"))
        makeFile(peer("dir/b"), Array("bravo".utf8))
        let events = Events()
        let client = try await connect(peer, events)
        defer { client.close() }

        let walked = try await client.walk("/dir/b")
        let opened = try await client.open("/a")
        let directory = try await client.walk("/dir")
        // A per-user attach (another fid, attached again on reconnect) and a file under it.
        let attach = try await client.attach(uname: "root", uid: 0)
        let underAttach = try await attach.walk(ByteView(static: "a"))
        // A file made with Tlcreate on a clone of the directory (as the mount's CREATE does):
        // the fid is the new file now, and comes back as it, not as the directory.
        let made = try await directory.clone()
        _ = try await made.create(ByteView(static: "made"), flags: UInt32(O_RDWR | O_CREAT | O_EXCL), mode: 0o644, gid: 0)
        try await made.write(contentsOf: Array("made here".utf8), at: 0)
        #expect(try await opened.read(at: 0, count: 100) == Array("alpha".utf8))
        print("ReconnectTests: the open file \(opened.usesLocalIO ? "has" : "has no") localio grant before the restart")

        peer.stop()
        #expect(events.lost(within: .seconds(5)))
        // While the server is away calls fail at once, they do not wait for it.
        let clock = ContinuousClock()
        let began = clock.now
        let during = await errno { _ = try await opened.read(at: 0, count: 100) }
        #expect(during == ECONNRESET)
        #expect(clock.now - began < .seconds(1))

        try peer.start()
        let line = events.reconnected(within: .seconds(10))
        #expect(line == "reconnected 6 0")
        // Its localio grant (if the server gave one) was the old server's: dropped.
        #expect(!opened.usesLocalIO)
        #expect(try await opened.read(at: 0, count: 100) == Array("alpha".utf8))
        #expect(try await walked.stat().size == 5)
        try await walked.open(.read)
        #expect(try await walked.read(at: 0, count: 100) == Array("bravo".utf8))
        // A fid-relative walk from a re-walked directory works on the new connection.
        let child = try await directory.walk(ByteView(static: "b"))
        #expect(try await child.stat().size == 5)
        await child.close()
        #expect(try await underAttach.stat().size == 5)
        let second = try await attach.walk(ByteView(static: "dir"))
        #expect(second.qid == directory.qid)
        await second.close()
        #expect(try await made.read(at: 0, count: 100) == Array("made here".utf8))
        try await made.write(contentsOf: Array("MADE".utf8), at: 0)
        await made.close()
        #expect(fileBytes(peer("dir/made")) == Array("MADE here".utf8))
        await underAttach.close()
        await attach.close()
        await walked.close()
        await opened.close()
    }

    @Test func aFileReplacedWhileDisconnectedBreaksItsFidsInsteadOfRebinding() async throws {
        let peer = try RestartableServer()
        defer { peer.stop() }
        makeFile(peer("open"), Array("old open".utf8))
        makeFile(peer("walked"), Array("old walked".utf8))
        let events = Events()
        let client = try await connect(peer, events)
        defer { client.close() }
        let opened = try await client.open("/open")
        let walked = try await client.walk("/walked")

        peer.stop()
        #expect(events.lost(within: .seconds(5)))
        // Replaced under the same names: new files made before the old are unlinked (by
        // rename), so they cannot reuse the old inode numbers.
        for name in ["open", "walked"] {
            makeFile(peer(name + ".new"), Array("new \(name)".utf8))
            #expect(rename(peer(name + ".new"), peer(name)) == 0)
        }
        try peer.start()
        #expect(events.reconnected(within: .seconds(10)) == "reconnected 0 2")

        #expect(await errno { _ = try await opened.read(at: 0, count: 100) } == EIO)
        #expect(await errno { _ = try await walked.stat() } == ESTALE)
        #expect(opened.isBroken && walked.isBroken)
        // The new files are there for whoever walks to them afresh.
        let fresh = try await client.open("/open")
        #expect(try await fresh.read(at: 0, count: 100) == Array("new open".utf8))
        await fresh.close()
        await opened.close()
        await walked.close()
    }

    @Test func aFidThatHeldALockComesBackBroken() async throws {
        let peer = try RestartableServer()
        defer { peer.stop() }
        makeFile(peer("locked"), Array("lock".utf8))
        makeFile(peer("plain"), Array("plain".utf8))
        let events = Events()
        let client = try await connect(peer, events)
        defer { client.close() }
        let locked = try await client.open("/locked", .readWrite)
        #expect(try await locked.lock(.write))
        let plain = try await client.open("/plain", .readWrite)

        peer.stop()
        #expect(events.lost(within: .seconds(5)))
        try peer.start()
        #expect(events.reconnected(within: .seconds(10)) == "reconnected 1 1")
        // Its lock went with the old connection: EIO, not a file silently unlocked.
        #expect(await errno { _ = try await locked.read(at: 0, count: 10) } == EIO)
        #expect(try await plain.read(at: 0, count: 10) == Array("plain".utf8))
        await locked.close()
        await plain.close()
    }

    @Test func aClientDroppedDuringAnOutageGoesAway() async throws {
        let peer = try RestartableServer()
        defer { peer.stop() }
        let events = Events()
        weak var dropped: NinePClient?
        do {
            let client = try await connect(peer, events)
            dropped = client
            peer.stop()
            #expect(events.lost(within: .seconds(5)))
        }
        // The retry loop holds it only during an attempt (a refused connect here): it ends.
        #expect(waitUntil(within: .seconds(3), pollingEvery: .milliseconds(10)) { dropped == nil })
    }

    @Test func withoutReconnectALostConnectionStaysLost() async throws {
        let peer = try RestartableServer()
        defer { peer.stop() }
        makeFile(peer("a"), Array("alpha".utf8))
        let client = try await NinePClient.connect(
            ClientConfiguration(address: .unix(path: peer.socket), uname: "root", uid: 0, msize: 256 * 1024, callTimeout: .seconds(5)))
        defer { client.close() }
        let opened = try await client.open("/a")
        peer.stop()
        try peer.start()
        try await Task.sleep(for: .milliseconds(300))
        #expect(await errno { _ = try await opened.read(at: 0, count: 10) } == ECONNRESET)
    }
}

/// mkdir(2) for a test, failing loudly.
enum FileManagerLite {
    static func mkdir(_ path: String) throws {
        guard Glibc.mkdir(path, 0o755) == 0 else { throw NinePError(.server, errno: errno, operation: .mkdir, path: path) }
    }
}

extension ReconnectTests {
    /// localio across a restart (docs/LOCALIO.md): the server stops in the middle of a
    /// transfer through a grant; after the client reconnects, the old session's grant is
    /// never used again (the client holds no reference to it: its descriptor is closed) and
    /// the rest of the file comes through 9P byte-exact.
    @Test func aServerRestartMidTransferLeavesNoStaleGrantInUse() async throws {
        let peer = try RestartableServer()
        defer { peer.stop() }
        let content = (0..<(2 << 20 | 333)).map { UInt8(truncatingIfNeeded: ($0 &* 29) ^ ($0 >> 11)) }
        makeFile(peer("big"), content)
        let events = Events()
        let client = try await connect(peer, events)
        defer { client.close() }
        let file = try await client.open("/big", .readWrite)
        #expect(file.usesLocalIO, "ninepd grants the open file on its unix socket")
        weak var oldGrant = file.localGrant
        #expect(oldGrant != nil)
        var read = try await file.read(at: 0, count: 512 << 10)

        peer.stop()
        #expect(events.lost(within: .seconds(5)))
        try peer.start()
        #expect(events.reconnected(within: .seconds(10)) == "reconnected 1 0")
        #expect(!file.usesLocalIO)
        #expect(oldGrant == nil, "the old session's grant is released: its descriptor is closed")
        while read.count < content.count {
            read += try await file.read(at: UInt64(read.count), count: 65536)
        }
        #expect(read == content)
        // Writes go through 9P to the new server too.
        try await file.write(contentsOf: Array("restarted".utf8), at: 1000)
        await file.close()
        var expected = content
        expected.replaceSubrange(1000..<1009, with: Array("restarted".utf8))
        #expect(fileBytes(peer("big")) == expected)
    }
}
