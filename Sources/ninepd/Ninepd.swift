import ArgumentParser
import CNinePShims
import Glibc
import Logging
import NinePMemory
import NinePServer
import NinePTransport

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

            SIGINT or SIGTERM stops it cleanly: requests in flight are answered, sockets closed. SIGUSR1 logs the connections, each memory pool's free buffers and the time requests waited for memory, per call site. SIGHUP is logged and changes nothing (reload is not supported yet).
            """
    )

    @Option(name: .long, help: ArgumentHelp("Directory to export.", valueName: "dir"))
    var export: String = "."

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
    var msize: UInt32 = 1024 * 1024

    @Flag(name: .long, help: "Refuse every change (writes, creates, renames, removals, attribute changes) with EROFS.")
    var readOnly = false

    @Option(name: .long, help: ArgumentHelp("Most simultaneous client connections; more are refused with a log line.", valueName: "n"))
    var maxConnections = 64

    @Option(name: .long, help: ArgumentHelp(
        "Most fids per connection; more get EMFILE. The kernel client with cache=loose holds about two per cached file.",
        valueName: "n"))
    var maxFids = 65536

    @Option(name: .long, help: ArgumentHelp(
        "Most requests in flight per connection; beyond it the server stops reading that connection until one completes.",
        valueName: "n"))
    var maxRequests = 64

    @Option(name: .long, help: ArgumentHelp("Worker threads for file work, shared by all connections.", valueName: "n"))
    var workers = 16

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
        "Start writing each write of 64 KiB or more to disk at once: auto (when ninepd runs in a memory-limited cgroup, where dirty page cache counts against the limit and can get the daemon OOM-killed), on, or off.",
        valueName: "auto|on|off"))
    var writeBehind: String = "auto"

    @Option(name: .long, help: ArgumentHelp("Permissions of unix sockets, in octal (e.g. 660).", valueName: "mode"))
    var socketMode: String?

    @Option(name: .long, help: ArgumentHelp("Only this uid may attach. Repeat for several.", valueName: "uid"))
    var allowUser: [UInt32] = []

    @Option(name: .long, help: ArgumentHelp("Run every attach as this uid (and --squash-gid), whoever the client says it is.", valueName: "uid"))
    var squashUid: UInt32?

    @Option(name: .long, help: ArgumentHelp("Group for --squash-uid (default: the same number as the uid).", valueName: "gid"))
    var squashGid: UInt32?

    @Option(name: .long, help: ArgumentHelp(
        "Who checks permissions. user (default): each request runs as the attaching user, with the groups this host lists for it; mount with access=user. client: requests run as root inside the export, new files get the attaching user as owner and the group and mode the client sends, and the client's kernel checks permissions with the caller's real groups; mount with access=client. client is only for clients trusted with the whole export (any of them can act as any user there, like QEMU's passthrough for VMs); it needs root and cannot be combined with --squash-uid.",
        valueName: "user|client"))
    var access: String = "user"

    @Option(name: .long, help: ArgumentHelp(
        "Disconnect a client that sends part of a message and then nothing, or takes none of its replies, for this many seconds (its fids are clunked; one log line says why). A client with nothing in flight is never dropped, however long it stays idle. 0: never.",
        valueName: "seconds"))
    var clientTimeout = 60

    @Option(name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
    var logLevel: String = "info"

    mutating func validate() throws {
        guard msize >= 4096 && msize <= 16 * 1024 * 1024 else {
            throw ValidationError("--msize \(msize) is out of range: give 4096 to 16777216 bytes (1048576 is a good default)")
        }
        for (name, value) in [("--max-connections", maxConnections), ("--max-fids", maxFids), ("--max-requests", maxRequests),
                              ("--workers", workers)] where value < 1 {
            throw ValidationError("\(name) must be at least 1 (got \(value))")
        }
        if let memoryBudget, MemoryPlan.parse(bytes: memoryBudget) == nil {
            throw ValidationError("--memory-budget '\(memoryBudget)' is not a size: give bytes or a number with K, M or G (e.g. 64M)")
        }
        if clientTimeout < 0 || clientTimeout > 86_400 {
            throw ValidationError("--client-timeout \(clientTimeout) is out of range: give 0 (never) to 86400 seconds")
        }
        if let oomScoreAdj, !(-1000...1000).contains(oomScoreAdj) {
            throw ValidationError("--oom-score-adj \(oomScoreAdj) is out of range: give -1000 to 1000")
        }
        guard let mode = AccessMode(rawValue: access) else {
            throw ValidationError("--access '\(access)' is not one of user, client")
        }
        if mode == .client && squashUid != nil {
            throw ValidationError("--access client and --squash-uid contradict each other: client keeps each user's ownership, a squash user replaces it; choose one")
        }
        if mode == .client && geteuid() != 0 {
            throw ValidationError("--access client needs root (it gives new files to their users with chown); run as root or use --access user")
        }
        if !["auto", "on", "off"].contains(writeBehind) {
            throw ValidationError("--write-behind '\(writeBehind)' is not one of auto, on, off")
        }
        if let socketMode, UInt32(socketMode, radix: 8) == nil {
            throw ValidationError("--socket-mode '\(socketMode)' is not an octal mode such as 660")
        }
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        let probe = open(export, NINEP_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard probe >= 0 else {
            throw ValidationError("--export '\(export)' is not a directory that can be opened (\(String(cString: strerror(errno))))")
        }
        close(probe)
    }

    func run() throws {
        // Termination signals go to the thread that waits for them, never to workers.
        _ = ninep_block_signals_for_thread()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "ninepd")

        var addresses: [ListenAddress] = []
        for text in listen.isEmpty ? ["tcp:127.0.0.1:5640"] : listen {
            do {
                addresses.append(try ListenAddress(parsing: text))
            } catch {
                throw ValidationError("--listen \(error.description)")
            }
        }
        var configuration = ServerConfiguration(exportPath: export, listen: addresses)
        configuration.maxMessageSize = msize
        configuration.readOnly = readOnly
        configuration.maxConnections = maxConnections
        configuration.maxFidsPerConnection = maxFids
        configuration.maxRequestsPerConnection = maxRequests
        configuration.workerThreads = workers
        configuration.clientTimeoutMilliseconds = clientTimeout * 1000
        configuration.memoryBudget = memoryBudget.flatMap(MemoryPlan.parse(bytes:))
        configuration.socketMode = socketMode.flatMap { UInt32($0, radix: 8) }
        configuration.allowedUsers = allowUser.isEmpty ? nil : Set(allowUser)
        if let squashUid { configuration.squashUser = (squashUid, squashGid ?? squashUid) }
        configuration.access = AccessMode(rawValue: access) ?? .user
        let cgroupLimit = MemoryCgroup.limitBytes()
        configuration.writeBehind = writeBehind == "on" || (writeBehind == "auto" && cgroupLimit != nil)
        let writeBehindText = configuration.writeBehind
            ? "write-behind on" + (cgroupLimit.map { " (memory cgroup limit \(MemoryPlan.format(bytes: $0)))" } ?? "")
            : "write-behind off"

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
        if let oomScoreAdj {
            let code = MemoryHardening.setOOMScoreAdjustment(oomScoreAdj)
            if code != 0 {
                logger.warning("cannot set oom_score_adj to \(oomScoreAdj): \(String(cString: strerror(code))) (lowering it needs CAP_SYS_RESOURCE)")
            }
        }
        let server: Server
        do {
            server = try Server(configuration: configuration, logger: logger, ioFlusher: ioFlusher)
        } catch {
            logger.critical("\(error.description)")
            throw ExitCode(1)
        }
        let plan = server.memoryPlan
        if !server.memoryLocked {
            logger.warning("buffer pools are not locked in RAM (mlock: \(server.memoryLockError)); under memory pressure they may be swapped out. Raise RLIMIT_MEMLOCK (ulimit -l) or grant CAP_IPC_LOCK")
        }
        if !noMlockall {
            // Lock what is mapped now and what is touched later (MCL_ONFAULT: thread stacks
            // and heap are locked as they are used, not populated whole).
            let code = MemoryHardening.lockAll()
            if code != 0 {
                logger.warning("mlockall refused (\(String(cString: strerror(code)))): the daemon's code and heap may be swapped out under memory pressure; raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK")
            }
        }
        server.start()
        let bound = server.boundAddresses.map(\.description).joined(separator: ", ")
        let identity = geteuid() != 0 ? "as uid \(geteuid()) for everyone"
            : configuration.squashUser != nil ? "squashed to uid \(configuration.squashUser!.uid)"
            : configuration.access == .client ? "root, owners from the client, permissions checked by the client (--access client: trusted clients only)"
            : "per attaching user"
        logger.info("""
            exporting \(server.exportSummaries.joined(separator: "; ")) on \(bound): msize \(msize), \(readOnly ? "read-only" : "read-write"), \
            identity \(identity), \(workers) workers, up to \(maxConnections) connections x \(maxRequests) requests in flight, \
            \(maxFids) fids per connection, \(files.rlim_cur) descriptors, \(writeBehindText), \(clientTimeout == 0 ? "stalled clients never disconnected" : "stalled clients disconnected after \(clientTimeout) s"); \(plan.summary)
            """)
        for address in addresses where !address.isLoopback {
            logger.warning("\(address) is reachable from other hosts; there is no authentication: restrict it with --allow-user, a firewall, or a loopback address")
        }

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
            if signal == SIGHUP {
                // SIGHUP's default action ends the process: a daemon started from a terminal
                // (or by a supervisor that sends SIGHUP to mean "reload") would die with every
                // mount it serves. Until ninepd can reload, it says so and keeps serving.
                logger.notice("received SIGHUP: reload is not supported yet; nothing changed")
                continue
            }
            logger.info("received \(signal == SIGINT ? "SIGINT" : "SIGTERM"): shutting down")
            server.shutdown()
            logger.info("stopped")
            return
        }
    }
}
