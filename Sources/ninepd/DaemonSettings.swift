import Logging
import NinePMemory
import NinePServer
import NinePTransport

/// What ninepd runs with. Precedence: a server-wide flag given on the command line wins over
/// the config file, which wins over the default. Exports come from the file's `exports`, or,
/// without --config, from the one-export flags (--export, --read-only, --squash-uid, ...).
struct DaemonSettings: Equatable {
    var listen: [ListenAddress]
    var msize: UInt32
    var maxConnections: Int
    var maxFids: Int
    var maxRequests: Int
    var workers: Int
    var memoryBudget: Int?
    var oomScoreAdj: Int?
    var mlockall: Bool
    var writeBehind: String
    var socketMode: UInt32?
    var clientTimeout: Int
    var logLevel: Logger.Level
    /// Where the metrics endpoint listens (--metrics-listen, or the file's metrics-listen); nil: off.
    var metricsListen: String?
    var exports: [ExportConfiguration]

    static let defaultListen = "tcp:127.0.0.1:5640"

    /// The flags over `file` (nil: no --config) over the defaults. The flags were checked by
    /// `Ninepd.validate`, the file by `ConfigLoader`.
    init(flags: Ninepd, file: LoadedConfig?) throws(ConfigError) {
        if !flags.listen.isEmpty {
            listen = []
            for text in flags.listen {
                do throws(ListenAddress.ParseError) {
                    listen.append(try ListenAddress(parsing: text))
                } catch {
                    throw ConfigError(description: "--listen \(error.description)")
                }
            }
        } else if let fromFile = file?.listen, !fromFile.isEmpty {
            listen = fromFile
        } else {
            listen = [try! ListenAddress(parsing: Self.defaultListen)]
        }
        msize = flags.msize ?? file?.msize ?? 1024 * 1024
        maxConnections = flags.maxConnections ?? file?.file.maxConnections ?? 64
        maxFids = flags.maxFids ?? file?.file.maxFids ?? 65536
        maxRequests = flags.maxRequests ?? file?.file.maxRequests ?? 64
        workers = flags.workers ?? file?.file.workers ?? 16
        memoryBudget = flags.memoryBudget.flatMap { MemoryPlan.parse(bytes: $0) } ?? file?.memoryBudget
        oomScoreAdj = flags.oomScoreAdj ?? file?.file.oomScoreAdj
        mlockall = flags.noMlockall ? false : (file?.file.mlockall ?? true)
        writeBehind = flags.writeBehind ?? file?.file.writeBehind ?? "auto"
        socketMode = flags.socketMode.flatMap { UInt32($0, radix: 8) } ?? file?.socketMode
        clientTimeout = flags.clientTimeout ?? file?.file.clientTimeout ?? 60
        logLevel = flags.logLevel.flatMap(Logger.Level.init(rawValue:)) ?? file?.logLevel ?? .info
        metricsListen = flags.metricsListen ?? file?.file.metricsListen
        if let file {
            exports = file.exports
        } else {
            var export = ExportConfiguration(name: "", path: flags.export ?? ".")
            export.readOnly = flags.readOnly
            export.allowedUsers = flags.allowUser.isEmpty ? nil : Set(flags.allowUser)
            export.squash = flags.squashUid.map { SquashIdentity(uid: $0, gid: flags.squashGid ?? $0) }
            export.access = flags.access.flatMap(AccessMode.init(rawValue:)) ?? .user
            exports = [export]
        }
    }

    /// The server's configuration (`writeBehind`: what auto resolved to on this host).
    func serverConfiguration(writeBehind: Bool) -> ServerConfiguration {
        var configuration = ServerConfiguration(exportPath: exports[0].path, listen: listen)
        configuration.exports = exports
        configuration.maxMessageSize = msize
        configuration.maxConnections = maxConnections
        configuration.maxFidsPerConnection = maxFids
        configuration.maxRequestsPerConnection = maxRequests
        configuration.workerThreads = workers
        configuration.clientTimeoutMilliseconds = clientTimeout * 1000
        configuration.memoryBudget = memoryBudget
        configuration.socketMode = socketMode
        configuration.writeBehind = writeBehind
        return configuration
    }

    /// The settings (by their config-file keys) whose values differ from `running` and that a
    /// running server cannot change: everything but the exports.
    func needingRestart(comparedTo running: DaemonSettings) -> [String] {
        var keys: [String] = []
        if listen != running.listen { keys.append("listen") }
        if msize != running.msize { keys.append("msize") }
        if maxConnections != running.maxConnections { keys.append("max-connections") }
        if maxFids != running.maxFids { keys.append("max-fids") }
        if maxRequests != running.maxRequests { keys.append("max-requests") }
        if workers != running.workers { keys.append("workers") }
        if memoryBudget != running.memoryBudget { keys.append("memory-budget") }
        if oomScoreAdj != running.oomScoreAdj { keys.append("oom-score-adj") }
        if mlockall != running.mlockall { keys.append("mlockall") }
        if writeBehind != running.writeBehind { keys.append("write-behind") }
        if socketMode != running.socketMode { keys.append("socket-mode") }
        if clientTimeout != running.clientTimeout { keys.append("client-timeout") }
        if logLevel != running.logLevel { keys.append("log-level") }
        if metricsListen != running.metricsListen { keys.append("metrics-listen") }
        return keys
    }
}
