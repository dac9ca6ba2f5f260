import Glibc
import Logging
import Metrics
import NinePServer
import NinePTransport
import NinePWire
import Synchronization
import Testing

/// A connected pair of unix stream sockets (blocking, close-on-exec): a client's end and a
/// server's, with no port and no network in between.
public func makeSocketPair() throws -> (client: Int32, server: Int32) {
    var ends: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
        throw WireClientError.unexpected("socketpair: errno \(errno)")
    }
    return (ends[0], ends[1])
}

/// A server started in this process, exporting its own temporary directory. Clients reach it
/// over socketpairs handed to `Server.serve(connectedSocket:peer:)` (`client()`,
/// `connectedSocket()`); with `transport: .tcp` it also listens on 127.0.0.1 (an ephemeral
/// port), for tests of listeners and accept. Shut down explicitly (or when released).
public final class TestServer {
    public enum Transport { case socketpair, tcp }

    public let export: TempDirectory
    public let server: Server
    /// The TCP port (`transport: .tcp`), else nil.
    public let port: UInt16?
    /// The server's ends of the socketpairs it was given, as /proc/self/fd shows them
    /// ("socket:[inode]"), to tell its descriptors from the test's.
    private let serverEnds = Mutex<Set<String>>([])
    private var stopped = false

    /// `configure` adjusts the configuration before the server starts. Tests use few
    /// workers and few large buffers: they are light, and many servers run at once.
    /// `metrics`: where its metrics go, with request metrics on (a test's own factory; else
    /// swift-metrics' global one, request metrics off).
    public init(
        transport: Transport = .socketpair, metrics: (any MetricsFactory)? = nil, _ configure: (inout ServerConfiguration) -> Void = { _ in }
    ) throws {
        export = try TempDirectory(prefix: "ninep-server-test")
        var configuration = ServerConfiguration(exportPath: export.path, listen: transport == .tcp ? [.tcp(host: "127.0.0.1", port: 0)] : [])
        configuration.workerThreads = 4
        configuration.largeBuffers = 8
        configuration.requestMetrics = metrics != nil
        configure(&configuration)
        var logger = Logger(label: "ninepd-test")
        logger.logLevel = getenv("NINEP_TEST_TRACE") != nil ? .trace : .critical
        server = try Server(configuration: configuration, logger: logger, metricsFactory: metrics)
        server.start()
        port = server.boundAddresses.lazy.compactMap { if case let .tcp(_, port) = $0 { port } else { nil } }.first
        if transport == .tcp && port == nil { throw WireClientError.unexpected("no TCP address bound") }
    }

    deinit { shutdown() }

    public var path: String { export.path }
    public func callAsFunction(_ relative: String) -> String { export(relative) }

    /// The client's end of a new socketpair whose other end the server now serves.
    /// `receiveBufferBytes` bounds what the server can send ahead of the client, as a small
    /// SO_RCVBUF does on TCP: on a unix socket what is in flight is charged to the sender's
    /// buffer, so it is the server end's SO_SNDBUF. (The client's own sends wait in its end,
    /// about 200 KiB by default, each send's overhead counted: no smaller limit is offered, a
    /// few KiB would hold only a handful of messages, however small.)
    public func connectedSocket(receiveBufferBytes: Int32? = nil) throws -> Int32 {
        let (client, serverEnd) = try makeSocketPair()
        if var bytes = receiveBufferBytes {
            setsockopt(client, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(serverEnd, SOL_SOCKET, SO_SNDBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
        }
        if let target = descriptorTarget(serverEnd) { serverEnds.withLock { _ = $0.insert(target) } }
        do {
            try server.serve(connectedSocket: serverEnd, peer: "socketpair")
        } catch {
            Glibc.close(client)
            throw error
        }
        return client
    }

    /// A connected wire client that has not sent anything yet.
    public func client(timeoutSeconds: Int = 5, receiveBufferBytes: Int32? = nil) throws -> WireClient {
        WireClient(connectedSocket: try connectedSocket(receiveBufferBytes: receiveBufferBytes), timeoutSeconds: timeoutSeconds)
    }

    /// A client after Tversion and Tattach of fid 0 (as root unless `uid` says otherwise).
    public func session(uid: UInt32 = 0, msize: UInt32 = 256 * 1024) throws -> WireClient {
        let c = try client()
        try c.version(msize: msize)
        try c.attach(fid: 0, nuname: uid)
        return c
    }

    /// Socket descriptors that belong to the server: its TCP sockets (listener and accepted
    /// connections), the ends of the socketpairs it was given.
    public func ownsSocket(_ target: String) -> Bool {
        if serverEnds.withLock({ $0.contains(target) }) { return true }
        guard let port else { return false }
        return tcpSocketInodes(localPort: port).contains(target)
    }

    /// Shuts the server down, waiting at most 10 s (a hung shutdown is an issue, not a hang).
    public func shutdown() {
        if shutdown(within: .seconds(10)) == nil {
            Issue.record("server shutdown did not finish within 10 s")
        }
    }

    /// Shuts the server down on another thread; how long it took, or nil when it did not
    /// finish within `limit` (the shutdown thread is then left behind).
    @discardableResult
    public func shutdown(within limit: Duration) -> Duration? {
        guard !stopped else { return .zero }
        stopped = true
        let done = Flag()
        let server = self.server
        let clock = ContinuousClock()
        let start = clock.now
        DaemonThread.start(name: "test-shutdown") {
            server.shutdown()
            done.set()
        }
        return waitUntil(within: limit) { done.isSet } ? clock.now - start : nil
    }
}
