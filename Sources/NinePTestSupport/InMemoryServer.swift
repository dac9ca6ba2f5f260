import Glibc
import Logging
import Metrics
import NinePServer

/// A server in this process over an `InMemoryFileSystem` (whose `faults` a test plans), reached
/// over socketpairs: `TestServer`'s twin for tests of what 9P means rather than what Linux does.
public final class InMemoryServer {
    public let fs = InMemoryFileSystem()
    public let server: FileServer<InMemoryFileSystem>

    /// `metrics`: where its metrics go, with request metrics on (see `TestServer`).
    public init(workers: Int = 4, metrics: (any MetricsFactory)? = nil) throws {
        var configuration = ServerConfiguration(exportPath: "memory", listen: [])
        configuration.workerThreads = workers
        configuration.largeBuffers = 8
        configuration.requestMetrics = metrics != nil
        var logger = Logger(label: "ninepd-in-memory-test")
        logger.logLevel = getenv("NINEP_TEST_TRACE") != nil ? .trace : .critical
        server = try FileServer(configuration: configuration, backend: fs, logger: logger, metricsFactory: metrics)
        server.start()
    }

    deinit { server.shutdown() }

    /// A client on a new socketpair whose other end the server now serves.
    public func client(timeoutSeconds: Int = 5) throws -> WireClient {
        let (client, serverEnd) = try makeSocketPair()
        do {
            try server.serve(connectedSocket: serverEnd, peer: "socketpair")
        } catch {
            Glibc.close(client)
            throw error
        }
        return WireClient(connectedSocket: client, timeoutSeconds: timeoutSeconds)
    }

    /// A client after Tversion and Tattach of fid 0.
    public func session() throws -> WireClient {
        let c = try client()
        try c.version()
        try c.attach(fid: 0)
        return c
    }

    /// Fids the server holds for all its connections.
    public var serverFids: Int { server.connectionShares().reduce(0) { $0 + $1.fids } }
}
