import Glibc
import NinePMemory
import NinePTransport
import NinePWire

/// A 9P2000.L client: one connection, attached once, shared by any number of tasks. Calls are
/// pipelined (many in flight, replies matched by tag in any order) and every call can be
/// cancelled: the task's cancellation sends Tflush and gives the caller control back.
///
///     let client = try await NinePClient.connect(to: "tcp:127.0.0.1:5640")
///     let file = try await client.open("/notes.txt")
///     let bytes = try await file.read(at: 0, count: 4096)
///     try await file.close()
///
/// Paths are relative to the attached root; "/a/b" and "a/b" mean the same.
public final class NinePClient: Sendable {
    /// The connection calls go to now: replaced only by the `Reconnector` (configuration.reconnect)
    /// once a new one is attached and its fids walked again.
    var connection: ClientConnection { connectionBox.withLock { $0 } }
    let connectionBox: AdaptiveMutex<ClientConnection>
    /// Keeps the live fids and reconnects (nil without `configuration.reconnect`).
    let reconnector: Reconnector?
    public let configuration: ClientConfiguration
    /// The qid of the attached root.
    public let rootQid: Qid
    /// Run calling tasks on this executor (as their preference) for a steady state without heap
    /// allocation; see `ClientExecutor`.
    public let executor = ClientExecutor()

    /// The msize both sides agreed on.
    public var msize: UInt32 { connection.msize }
    /// The most file data one Tread or Twrite carries: msize less P9_IOHDRSZ (24), the
    /// header room the Linux client and diod reserve (diod refuses larger counts).
    public var maxIOSize: Int { Int(msize) - 24 }

    /// The group sent with every creation (Tlcreate, Tmkdir, Tsymlink): the attaching user's
    /// primary group, so that root creating as "nobody" does not create files in group root.
    let creationGroup: UInt32

    private init(connection: ClientConnection, configuration: ClientConfiguration, rootQid: Qid) {
        connectionBox = AdaptiveMutex(connection)
        self.configuration = configuration
        self.rootQid = rootQid
        creationGroup = configuration.uid == nil ? ClientConfiguration.numericGroup(for: configuration.uname) : getgid()
        reconnector = configuration.reconnect.map { Reconnector(policy: $0) }
        reconnector?.watch(connection, of: self)
    }

    deinit {
        reconnector?.stop()
        connection.shutdown()
        executor.stop()
    }

    /// Connects, negotiates the msize, and attaches `configuration.aname`. With
    /// `connectedSocket`, runs over that socket (already connected to a server: one end of a
    /// `socketpair`, say), which the client then owns; `configuration.address` only names the
    /// server in errors.
    public static func connect(_ configuration: ClientConfiguration, connectedSocket: Int32? = nil) async throws -> NinePClient {
        // Connect and Tversion block a thread of their own; a cancelled caller stops waiting.
        let connection = try await CancellableOpen.open(configuration, connectedSocket: connectedSocket)
        let uid = configuration.uid ?? ClientConfiguration.numericUser(for: configuration.uname)
        do {
            let qid = try await connection.attach(
                fid: FidAllocator.root, uname: configuration.uname, aname: configuration.aname, uid: uid, timeout: configuration.callTimeout)
            return NinePClient(connection: connection, configuration: configuration, rootQid: qid)
        } catch let error as NinePError {
            connection.shutdown()
            throw error.at(configuration.aname.isEmpty ? configuration.address.description : configuration.aname)
        } catch {
            connection.shutdown()
            throw error
        }
    }

    /// Connects to `address` (`tcp:HOST:PORT` or `unix:PATH`).
    public static func connect(
        to address: String, uname: String = ClientConfiguration.currentUserName, aname: String = "", msize: UInt32 = 1 << 20
    ) async throws -> NinePClient {
        let parsed: ListenAddress
        do {
            parsed = try ListenAddress(parsing: address)
        } catch {
            throw NinePError(.invalidArgument, errno: EINVAL, operation: .connect, path: address)
        }
        return try await connect(ClientConfiguration(address: parsed, uname: uname, aname: aname, msize: msize))
    }

    /// Closes the connection; calls still waiting fail with a lost connection.
    public func close() {
        reconnector?.stop()
        connection.shutdown()
    }

    // MARK: Timeouts

    /// A time limit for the calls made inside `body` (nil: no limit), instead of
    /// `configuration.callTimeout`.
    public static func withCallTimeout<T>(_ timeout: Duration?, _ body: () async throws -> T) async rethrows -> T {
        try await $timeoutOverride.withValue(TimeoutOverride(limit: timeout), operation: body)
    }

    struct TimeoutOverride: Sendable {
        let limit: Duration?
    }

    @TaskLocal static var timeoutOverride: TimeoutOverride? = nil

    var callTimeout: Duration? {
        if let override = NinePClient.timeoutOverride { return override.limit }
        return configuration.callTimeout
    }

    /// The number of tags reserved right now (calls in flight, flushes awaiting Rflush, and
    /// flushed calls whose Rflush has not come), not counting localio's revocation poll,
    /// which a session that holds grants keeps outstanding on purpose (docs/LOCALIO.md).
    public var tagsInUse: Int {
        let poll = connection.grants.outstandingPollTag
        return connection.state.withLock { state in
            state.tagsInUse - (poll.map { state.tags.slot(of: $0) != nil ? 1 : 0 } ?? 0)
        }
    }

    /// Requests sent right behind another's (`ClientConnection+Following`): how many were
    /// collected, how many of those the server ran first, and whether they are still sent.
    public var followers: (collected: Int, ranFirst: Int, on: Bool) {
        connection.state.withLock { ($0.followersCollected, $0.followersRanFirst, !$0.followersOff) }
    }

    /// Request slots free right now (neither in flight nor held by a caller). A caller that
    /// may skip a call (the FUSE mount's read-ahead) asks first, so it never takes the last ones.
    public var idleRequestSlots: Int { connection.state.withLock { $0.idleRequestSlots } }

    /// Message buffers allocated so far (they are kept for reuse).
    public var messageBuffersAllocated: Int { connection.state.withLock { $0.buffers.allocated } }
}
