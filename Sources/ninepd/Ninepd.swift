import ArgumentParser
import CNinePShims
import Glibc
import Logging
import NinePMemory
import NinePServer
import NinePTransport
import Prometheus

@main
struct Ninepd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ninepd",
        abstract: "Export a directory over 9P2000.L (TCP and unix sockets).",
        discussion: """
            With no options, ninepd exports the current directory on tcp:127.0.0.1:5640 (loopback only).

            Serve and mount over TCP, then over a unix socket:
              ninepd --export /srv/share --listen tcp:0.0.0.0:5640
              mount -t 9p -o trans=tcp,port=5640,version=9p2000.L,access=user HOST /mnt
              ninepd --export /srv/share --listen unix:/run/ninepd.sock
              mount -t 9p -o trans=unix,version=9p2000.L,access=user /run/ninepd.sock /mnt

            As root, each request runs with the attaching user's fsuid, fsgid and groups (mount with access=user so that the kernel attaches once per user). As any other user, every access is that user's.

            Memory: every buffer, request context and fid slot on the request path comes from one budget (--memory-budget), allocated, touched and locked in RAM at start-up; the start-up log shows what it buys. A request that finds no free buffer waits (the connection stops being read, so the client is pushed back); it never fails for lack of memory. Give the daemon --oom-score-adj -1000 so the kernel's OOM killer picks another process.

            Isolation: no client can stall another. Replies a client does not read wait in that connection's own outbox (its writer thread sends them), never on a worker; a connection may hold at most a quarter of each buffer pool and is always due one request's buffers, so a client that stops reading is simply no longer read once its share is used. Workers take requests from the connections in turn. --client-timeout disconnects a peer that stops inside a message or takes none of its replies; idle clients are never dropped.

            Several exports: --config FILE (YAML; see docs/ninepd.yaml.example) lists exports by name, each with its own path, read-only, squash-uid/squash-gid, allow-users and access; a client picks one with its attach name (mount -o aname=NAME); an empty aname gets the first, and an export's path selects it too. The file may also hold the server-wide settings of the flags (listen, msize, max-connections, max-fids, max-requests, workers, memory-budget, oom-score-adj, mlockall, write-behind, socket-mode, client-timeout, log-level, metrics-listen). Precedence: a server-wide flag given on the command line overrides the file, which overrides the default. The one-export flags (--export, --read-only, --allow-user, --squash-uid, --squash-gid, --access) describe the single export of a command line without --config, and are refused with --config: write that export in the file. A file that cannot be used (YAML error, unknown key, wrong type, missing directory, repeated or unclean name) stops ninepd with exit status 64 and a message naming the file, the line and the key.

            Under systemd: with Type=notify, ninepd reports READY=1 once its pools are locked and its listeners accept; with socket activation (LISTEN_FDS), it serves the sockets it is given instead of binding the default address (--listen adds more).

            SIGINT or SIGTERM stops it cleanly: requests in flight are answered, sockets closed. SIGUSR2 revokes every localio grant (docs/LOCALIO.md). SIGUSR1 logs the exports, the connections, each memory pool's free buffers and the time requests waited for memory, per call site; --metrics-listen serves all of it, with per-operation and per-client figures, to Prometheus and `ninep top`. SIGHUP re-reads the --config file: new attaches see its exports (sessions attached before keep theirs until they clunk); a file that cannot be used is logged and changes nothing; listen, msize, workers, memory-budget and the other server-wide settings need a restart (logged, old values kept). Without --config SIGHUP is logged and changes nothing.
            """,
        version: BuildStamp.versionLine(program: "ninepd")
    )

    @Option(name: .long, help: ArgumentHelp(
        "YAML file with the exports by name and, optionally, server-wide settings (see docs/ninepd.yaml.example); re-read on SIGHUP. Server-wide flags given too override it; the one-export flags cannot be combined with it.",
        valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Directory to export (default: .). Not with --config.", valueName: "dir"))
    var export: String?

    @Option(name: .long, help: ArgumentHelp(
        "Address to listen on: tcp:HOST:PORT, tcp:[IPV6]:PORT or unix:PATH. Repeat for several. (default: tcp:127.0.0.1:5640)",
        valueName: "addr"))
    var listen: [String] = []

    @Option(name: .long, help: ArgumentHelp("Largest message size offered to clients: bytes, or with a K or M suffix (4K to 16M).", valueName: "size"),
            transform: { text in
                guard let bytes = MemoryPlan.parse(bytes: text), let size = UInt32(exactly: bytes) else {
                    throw ValidationError("--msize '\(text)' is not a size: give bytes or K/M, e.g. 1M or 1048576")
                }
                return size
            })
    var msize: UInt32?

    @Flag(name: .long, help: "Refuse every change (writes, creates, renames, removals, attribute changes) with EROFS. Not with --config (write read-only: true in the export).")
    var readOnly = false

    @Option(name: .long, help: ArgumentHelp("Most simultaneous client connections; more are refused with a log line. (default: 64)", valueName: "n"))
    var maxConnections: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Most fids per connection; more get EMFILE. The kernel client with cache=loose holds about two per cached file. (default: 65536)",
        valueName: "n"))
    var maxFids: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Most requests in flight per connection; beyond it the server stops reading that connection until one completes. (default: 64)",
        valueName: "n"))
    var maxRequests: Int?

    @Option(name: .long, help: ArgumentHelp("Worker threads for file work, shared by all connections. (default: 16)", valueName: "n"))
    var workers: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Memory for buffers, request contexts and fid slots, all allocated and locked at start-up: bytes, or with a K, M or G suffix (e.g. 64M). Default: derived from --msize, --workers and --max-connections. The smallest budget that works holds one msize buffer.",
        valueName: "size"))
    var memoryBudget: String?

    // .unconditional: "--oom-score-adj -1000" must not read -1000 as an option.
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp(
        "Write this to /proc/self/oom_score_adj (-1000 to 1000): -1000 keeps the OOM killer away from ninepd.",
        valueName: "n"))
    var oomScoreAdj: Int?

    @Flag(name: .long, help: "Do not lock the daemon's memory in RAM (mlockall); the buffer pools are still locked when permitted.")
    var noMlockall = false

    @Option(name: .long, help: ArgumentHelp(
        "Start writing each write of 64 KiB or more to disk at once: auto (when ninepd runs in a memory-limited cgroup, where dirty page cache counts against the limit and can get the daemon OOM-killed), on, or off. (default: auto)",
        valueName: "auto|on|off"))
    var writeBehind: String?

    @Option(name: .long, help: ArgumentHelp("Permissions of unix sockets, in octal (e.g. 660).", valueName: "mode"))
    var socketMode: String?

    @Option(name: .long, help: ArgumentHelp("Only this uid may attach. Repeat for several. Not with --config (allow-users in the export).", valueName: "uid"))
    var allowUser: [UInt32] = []

    @Option(name: .long, help: ArgumentHelp("Run every attach as this uid (and --squash-gid), whoever the client says it is. Not with --config (squash-uid in the export).", valueName: "uid"))
    var squashUid: UInt32?

    @Option(name: .long, help: ArgumentHelp("Group for --squash-uid (default: the same number as the uid).", valueName: "gid"))
    var squashGid: UInt32?

    @Option(name: .long, help: ArgumentHelp(
        "Who checks permissions. user (default): each request runs as the attaching user, with the groups this host lists for it; mount with access=user. client: requests run as root inside the export, new files get the attaching user as owner and the group and mode the client sends, and the client's kernel checks permissions with the caller's real groups; mount with access=client. client is only for clients trusted with the whole export (any of them can act as any user there, like QEMU's passthrough for VMs); it needs root and cannot be combined with --squash-uid. (default: user; not with --config: access in the export)",
        valueName: "user|client"))
    var access: String?

    @Option(name: .long, help: ArgumentHelp(
        "Disconnect a client that sends part of a message and then nothing, or takes none of its replies, for this many seconds (its fids are clunked; one log line says why). A client with nothing in flight is never dropped, however long it stays idle. 0: never. (default: 60)",
        valueName: "seconds"))
    var clientTimeout: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Serve Prometheus metrics over HTTP at this address (GET /metrics): tcp:HOST:PORT or unix:PATH, e.g. tcp:127.0.0.1:9640. Requests by type, errors by errno, latency histograms, bytes, connections, fids, flushes, memory waits, and per-client figures (what `ninep top` shows). Off unless given (or metrics-listen in a --config file).",
        valueName: "addr"))
    var metricsListen: String?

    @Option(name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical. (default: info)", valueName: "level"))
    var logLevel: String?

    mutating func validate() throws {
        if let msize, msize < 4096 || msize > 16 * 1024 * 1024 {
            throw ValidationError("--msize \(msize) is out of range: give 4096 to 16777216 bytes (1048576 is a good default)")
        }
        for (name, value) in [("--max-connections", maxConnections), ("--max-fids", maxFids), ("--max-requests", maxRequests),
                              ("--workers", workers)] {
            if let value, value < 1 { throw ValidationError("\(name) must be at least 1 (got \(value))") }
        }
        if let memoryBudget, MemoryPlan.parse(bytes: memoryBudget) == nil {
            throw ValidationError("--memory-budget '\(memoryBudget)' is not a size: give bytes or a number with K, M or G (e.g. 64M)")
        }
        if let clientTimeout, clientTimeout < 0 || clientTimeout > 86_400 {
            throw ValidationError("--client-timeout \(clientTimeout) is out of range: give 0 (never) to 86400 seconds")
        }
        if let oomScoreAdj, !(-1000...1000).contains(oomScoreAdj) {
            throw ValidationError("--oom-score-adj \(oomScoreAdj) is out of range: give -1000 to 1000")
        }
        if let writeBehind, !["auto", "on", "off"].contains(writeBehind) {
            throw ValidationError("--write-behind '\(writeBehind)' is not one of auto, on, off")
        }
        if let socketMode, UInt32(socketMode, radix: 8) == nil {
            throw ValidationError("--socket-mode '\(socketMode)' is not an octal mode such as 660")
        }
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        if let metricsListen {
            do {
                _ = try ListenAddress(parsing: metricsListen)
            } catch {
                throw ValidationError("--metrics-listen \(error.description)")
            }
        }
        if config != nil {
            // These describe the one export of a command line; with a file, each export says
            // its own, and a flag that silently applied to one of them (or all) would surprise.
            let oneExport: [(String, Bool)] = [
                ("--export", export != nil), ("--read-only", readOnly), ("--allow-user", !allowUser.isEmpty),
                ("--squash-uid", squashUid != nil), ("--squash-gid", squashGid != nil), ("--access", access != nil),
            ]
            if let (flag, _) = oneExport.first(where: { $0.1 }) {
                throw ValidationError("\(flag) describes the one export of a command line and cannot be combined with --config: write it in the file's exports (path, read-only, allow-users, squash-uid, squash-gid, access)")
            }
            return
        }
        let mode = AccessMode(rawValue: access ?? "user")
        guard let mode else {
            throw ValidationError("--access '\(access ?? "")' is not one of user, client")
        }
        if mode == .client && squashUid != nil {
            throw ValidationError("--access client and --squash-uid contradict each other: client keeps each user's ownership, a squash user replaces it; choose one")
        }
        if mode == .client && geteuid() != 0 {
            throw ValidationError("--access client needs root (it gives new files to their users with chown); run as root or use --access user")
        }
        if squashGid != nil && squashUid == nil {
            throw ValidationError("--squash-gid needs --squash-uid: give both (or neither)")
        }
        let directory = export ?? "."
        let probe = open(directory, NINEP_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard probe >= 0 else {
            throw ValidationError("--export '\(directory)' is not a directory that can be opened (\(String(cString: strerror(errno))))")
        }
        close(probe)
    }

    func run() throws {
        // Termination signals go to the thread that waits for them, never to workers.
        _ = ninep_block_signals_for_thread()
        let settings: DaemonSettings
        do throws(ConfigError) {
            settings = try DaemonSettings(flags: self, file: try config.map { (path) throws(ConfigError) in try ConfigLoader.load(path) })
        } catch {
            // Before logging starts: the message goes to stderr as the parser's own would.
            let message = "ninepd: \(error.description)\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            throw ExitCode(64)
        }
        let level = settings.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "ninepd")

        let cgroupLimit = MemoryCgroup.limitBytes()
        let writeBehindOn = settings.writeBehind == "on" || (settings.writeBehind == "auto" && cgroupLimit != nil)
        var configuration = settings.serverConfiguration(writeBehind: writeBehindOn)
        // Sockets from systemd (socket activation) replace the default address; --listen or the
        // file's listen adds to them.
        let inherited = try SocketActivation.takeDescriptors()
        if !inherited.isEmpty {
            configuration.inheritedListeners = inherited
            if listen.isEmpty && configuration.listen == [try! ListenAddress(parsing: DaemonSettings.defaultListen)] {
                configuration.listen = []
            }
        }
        let writeBehindText = configuration.writeBehind
            ? "write-behind on" + (cgroupLimit.map { " (memory cgroup limit \(MemoryPlan.format(bytes: $0)))" } ?? "")
            : "write-behind off"
        let maxConnections = settings.maxConnections, maxFids = settings.maxFids, maxRequests = settings.maxRequests
        let workers = settings.workers, msize = settings.msize, clientTimeout = settings.clientTimeout

        // Every fid holds a descriptor (two when open): raise the soft limit as far as allowed.
        var files = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &files)
        let wanted = rlim_t(min(Int(files.rlim_max), maxConnections * maxFids + 1024))
        if files.rlim_cur < wanted {
            files.rlim_cur = wanted
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &files)
            getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &files)
        }
        if Int(files.rlim_cur) < 8 * 1024 {
            logger.warning("only \(files.rlim_cur) file descriptors allowed (RLIMIT_NOFILE): each fid holds one, so clients will get EMFILE early; raise the hard limit (ulimit -Hn)")
        }
        let ioFlusher = ninep_set_io_flusher() == 0
        if !ioFlusher {
            logger.notice("PR_SET_IO_FLUSHER refused (\(String(cString: strerror(errno)))): needs CAP_SYS_RESOURCE; continuing without it")
        }
        if let oomScoreAdj = settings.oomScoreAdj {
            let code = MemoryHardening.setOOMScoreAdjustment(oomScoreAdj)
            if code != 0 {
                logger.warning("cannot set oom_score_adj to \(oomScoreAdj): \(String(cString: strerror(code))) (lowering it needs CAP_SYS_RESOURCE)")
            }
        }
        // Metrics: a registry of their own (no global bootstrap), filled by the server's
        // housekeeping thread and before each scrape; the request path only counts.
        let metricsAddress = settings.metricsListen.flatMap { try? ListenAddress(parsing: $0) }
        let registry = PrometheusCollectorRegistry()
        configuration.requestMetrics = metricsAddress != nil
        let server: Server
        do {
            server = try Server(
                configuration: configuration, logger: logger, ioFlusher: ioFlusher,
                metricsFactory: metricsAddress == nil ? nil : PrometheusMetricsFactory(registry: registry))
        } catch {
            logger.critical("\(error.description)")
            throw ExitCode(1)
        }
        let plan = server.memoryPlan
        if !server.memoryLocked {
            logger.warning("buffer pools are not locked in RAM (mlock: \(server.memoryLockError)); under memory pressure they may be swapped out. Raise RLIMIT_MEMLOCK (ulimit -l) or grant CAP_IPC_LOCK")
        }
        if settings.mlockall {
            // Lock what is mapped now and what is touched later (MCL_ONFAULT: thread stacks
            // and heap are locked as they are used, not populated whole).
            let code = MemoryHardening.lockAll()
            if code != 0 {
                logger.warning("mlockall refused (\(String(cString: strerror(code)))): the daemon's code and heap may be swapped out under memory pressure; raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK")
            }
        }
        server.start()
        var endpoint: MetricsEndpoint?
        if let metricsAddress {
            do {
                endpoint = try MetricsEndpoint(address: metricsAddress, registry: registry, publish: { [server] in server.publishMetrics() })
            } catch {
                logger.critical("\(error.description)")
                server.shutdown()
                throw ExitCode(1)
            }
        }
        let bound = server.boundAddresses.map(\.description).joined(separator: ", ")
        // Every export, aname -> directory (read-only or read-write, identity), then the limits.
        logger.info("""
            exporting \(server.exportSummaries.joined(separator: "; ")) on \(bound): msize \(msize), \
            \(workers) workers, up to \(maxConnections) connections x \(maxRequests) requests in flight, \
            \(maxFids) fids per connection, \(files.rlim_cur) descriptors, \(writeBehindText), \(clientTimeout == 0 ? "stalled clients never disconnected" : "stalled clients disconnected after \(clientTimeout) s"); \(plan.summary)
            """)
        if let config { logger.info("configuration from \(config); SIGHUP re-reads its exports") }
        if let endpoint {
            logger.info("metrics at \(Self.url(of: endpoint.boundAddress)) (Prometheus text format; `ninep top --metrics \(endpoint.boundAddress)` shows them live)")
            if !endpoint.boundAddress.isLoopback {
                logger.warning("the metrics endpoint \(endpoint.boundAddress) is reachable from other hosts: it names every client's address")
            }
        }
        // After the listeners (and the metrics endpoint) are up and the start-up line is out.
        if let failure = SystemdNotify.ready(status: "serving \(server.exportSummaries.count) export(s) on \(bound)") {
            logger.warning("cannot tell the service manager that ninepd is ready (\(failure)); with Type=notify it will give up on the service at its start timeout")
        }
        for address in server.boundAddresses where !address.isLoopback {  // sockets from systemd too
            logger.warning("\(address) is reachable from other hosts; there is no authentication: restrict it with --allow-user (allow-users in a config file), a firewall, or a loopback address")
        }

        var reload = config.map { ConfigReload(path: $0, flags: self, running: settings) }
        while true {
            let signal = ninep_wait_termination_signal()
            if signal == SIGUSR1 {
                // Formatting the report allocates: when malloc refuses, say so without it.
                if MemoryProbe.canAllocate(bytes: 1 << 20) {
                    for line in server.statusReport() { logger.info("status: \(line)") }
                } else {
                    let message: StaticString = "ninepd: status skipped: memory is short\n"
                    _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
                }
                continue
            }
            if signal == SIGUSR2 {
                // localio (docs/LOCALIO.md): an administrator takes every grant back.
                let count = server.revokeLocalGrants()
                logger.notice("received SIGUSR2: revoked \(count) localio grant(s); clients move those files' data by 9P from now on")
                continue
            }
            if signal == SIGHUP {
                // SIGHUP's default action ends the process: a daemon started from a terminal
                // (or by a supervisor that sends SIGHUP to mean "reload") would die with every
                // mount it serves. With --config it means: read the file again.
                if reload != nil {
                    reload!.reload(server, logger: logger)
                } else {
                    logger.notice("received SIGHUP: no config file to reload (exports can change at run time only with --config FILE); nothing changed")
                }
                continue
            }
            logger.info("received \(signal == SIGINT ? "SIGINT" : "SIGTERM"): shutting down")
            SystemdNotify.stopping()
            endpoint?.close()
            server.shutdown()
            logger.info("stopped")
            return
        }
    }

    /// How a browser or Prometheus reaches the endpoint.
    static func url(of address: ListenAddress) -> String {
        switch address {
        case let .tcp(host, port): host.contains(":") ? "http://[\(host)]:\(port)/metrics" : "http://\(host):\(port)/metrics"
        case let .unix(path): "unix:\(path) (GET /metrics)"
        }
    }
}
