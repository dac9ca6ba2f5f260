import CNinePShims
import Glibc
import Logging
import Metrics
import NinePMemory
import NinePTransport
import Synchronization

/// The server of a directory on the host's file system: what ninepd runs.
public typealias Server = FileServer<PosixBackend>

/// A 9P2000.L file server: listeners, connections, the worker pool, and the exported tree
/// (`Backend`). Generic rather than holding `any FileSystemBackend`: every backend call on the
/// request path is a direct, specialised call.
public final class FileServer<Backend: FileSystemBackend>: @unchecked Sendable {
    // @unchecked Sendable: immutable after init except `active`, `idleSlots`, `listeners`,
    // `nextConnectionID`, `stopping` and `droppedLogLines`, which are guarded by `registry`
    // (`exportTable` is a Mutex of its own).
    public let configuration: ServerConfiguration
    /// The exported tree.
    public let backend: Backend
    let logger: Logger
    let qids: QidMapper
    let users = UserDirectory()
    let queue: WorkQueue<Backend>
    /// Every buffer of the request path, from one budget (see `MemoryPlan`).
    let arena: MemoryArena
    public var memoryPlan: MemoryPlan { arena.plan }
    /// Whether the buffer pools are locked in RAM, and why not.
    public var memoryLocked: Bool { arena.locked }
    public var memoryLockError: String { String(cString: strerror(arena.lockError)) }
    let metrics: MemoryMetrics
    /// Request counts published into swift-metrics (nil unless `configuration.requestMetrics`).
    let requestMetrics: RequestMetrics?
    /// The counts of sessions that ended (added when each ends, under `metricsLock`).
    let retiredStatistics = RequestStatistics()
    /// Serialises publishing (the housekeeping thread and scrapes) with the hand-over of an
    /// ended session's counts into `retiredStatistics`.
    let metricsLock = ConditionLock()
    let waiter: ReadinessWaiter<Backend>
    /// Root on a tree with host identities: workers can switch credentials per request (each
    /// export's access mode says to whom, see `Export`), and evicted fids can be reopened by
    /// file handle.
    let privileged: Bool
    /// What Tattach's aname selects, the default first (`Server+Exports.swift`). Replaced whole
    /// by `replaceExports`; fids keep the export they attached through.
    let exportTable: Mutex<[Export<Backend>]>
    let ioFlusher: Bool
    /// Log every request and its reply (--log-level trace).
    let tracesRequests: Bool
    private let registry = ConditionLock()
    /// Connections serving a client: preallocated slots in use and those beyond the table.
    private var active: [ServerConnection<Backend>] = []
    /// Preallocated slots waiting for a client.
    private var idleSlots: [ServerConnection<Backend>] = []
    private var slots: [ServerConnection<Backend>] = []
    private var listeners: [Listener] = []
    private var nextConnectionID = 0
    private var stopping = false
    /// Log lines skipped because memory was short when they were due.
    private var droppedLogLines = 0
    /// Clients taken and refused (--max-connections, shutting down) since start.
    private var connectionsAccepted = 0
    private var connectionsRefused = 0
    private let housekeeping = ConditionLock()

    public typealias StartError = ServerStartError
    public typealias ConnectionShare = ServerConnectionShare

    /// Serves `backend` as the first export of `configuration.effectiveExports` (its path is
    /// only what logs call it; the others are opened with `backend.sibling(exporting:)`) and
    /// binds every listener; serving starts with `start()`. Metrics go to `metricsFactory` (the
    /// one bootstrapped in swift-metrics' `MetricsSystem` unless given).
    public init(
        configuration: ServerConfiguration, backend: Backend, logger: Logger, ioFlusher: Bool = false,
        metricsFactory: (any MetricsFactory)? = nil
    ) throws(StartError) {
        self.configuration = configuration
        self.backend = backend
        self.logger = logger
        self.ioFlusher = ioFlusher
        qids = QidMapper(rootDevice: backend.rootDevice)
        privileged = geteuid() == 0 && backend.usesHostIdentity
        exportTable = Mutex(try FileServer<Backend>.openExports(configuration.effectiveExports, first: backend, origin: backend, privileged: privileged))
        queue = WorkQueue(connections: configuration.maxConnections)
        waiter = ReadinessWaiter(contexts: configuration.maxConnections * configuration.maxRequestsPerConnection)
        let plan: MemoryPlan
        do {
            plan = try MemoryPlan.derive(MemoryPlan.Inputs(
                budget: configuration.memoryBudget, messageSize: Int(configuration.maxMessageSize),
                workers: configuration.workerThreads, maxConnections: configuration.maxConnections,
                connectionSlotBytes: ServerConnection<Backend>.slotBytes(configuration), largeBuffers: configuration.largeBuffers))
            arena = try MemoryArena(plan: plan, sites: MemorySite.names)
        } catch {
            throw StartError(description: "\(error)")
        }
        let factory = metricsFactory ?? MetricsSystem.factory
        metrics = MemoryMetrics(arena: arena, factory: factory)
        requestMetrics = configuration.requestMetrics ? RequestMetrics(factory: factory) : nil
        tracesRequests = logger.logLevel <= .trace
        for address in configuration.listen {
            do {
                listeners.append(try Listener(address, socketMode: configuration.socketMode.map { mode_t($0) }))
            } catch {
                for listener in listeners { listener.close() }
                throw StartError(description: "cannot listen on \(error)")
            }
        }
        for fd in configuration.inheritedListeners {
            do {
                listeners.append(try Listener(adopting: fd))
            } catch {
                for listener in listeners { listener.close() }
                throw StartError(description: "cannot serve \(error)")
            }
        }
        // The connection table, allocated now: accepting a client into it allocates nothing.
        active.reserveCapacity(configuration.maxConnections)
        idleSlots.reserveCapacity(plan.connectionSlots)
        for _ in 0..<plan.connectionSlots { slots.append(ServerConnection(server: self, preallocated: true)) }
        idleSlots.append(contentsOf: slots.reversed())
    }

    private let evictions = Atomic<Int>(0)

    /// Descriptor pressure: idle fids give back their NINEP_O_PATH descriptors (a quarter of them,
    /// least recently used first, from `connection` and then from the others), keeping file
    /// handles to reopen them. Only as root (open_by_handle_at needs CAP_DAC_READ_SEARCH).
    func relieveDescriptorPressure(preferring connection: ServerConnection<Backend>) -> Int {
        guard privileged else { return 0 }
        var closed = connection.fids.evictIdle(fraction: 0.25)
        if closed == 0 {
            for other in registry.withLock({ active }) where other !== connection {
                closed += other.fids.evictIdle(fraction: 0.25)
            }
        }
        if evictions.add(1, ordering: .relaxed).oldValue == 0 {
            logger.notice("descriptor limit reached: idle fids give back their descriptors and reopen by file handle when used (raise RLIMIT_NOFILE to avoid this)")
        }
        return closed
    }

    /// Addresses actually bound (port 0 resolved), in the order given.
    public var boundAddresses: [ListenAddress] {
        registry.withLock {
            listeners.map { listener in
                if case let .tcp(host, _) = listener.address { return .tcp(host: host, port: listener.boundPort) }
                return listener.address
            }
        }
    }

    /// Starts the workers, the reader and writer threads of the connection table, one accept thread per
    /// listener, and the housekeeping thread that publishes metrics.
    public func start() {
        _ = ninep_install_interrupt_handler(ninep_interrupt_signal())
        waiter.start(name: "9p-waiter")
        for index in 0..<configuration.workerThreads {
            DaemonThread.start(name: "9p-worker-\(index)") { [self] in
                Worker(server: self).run()
            }
        }
        for (index, slot) in slots.enumerated() {
            DaemonThread.start(name: "9p-conn-\(index)") { [self] in
                if ioFlusher { _ = ninep_set_io_flusher() }
                slot.readerThread()
            }
            DaemonThread.start(name: "9p-out-\(index)") { [self] in
                if ioFlusher { _ = ninep_set_io_flusher() }
                slot.writerThread()
            }
        }
        for listener in registry.withLock({ listeners }) {
            DaemonThread.start(name: "9p-accept") { [self] in
                acceptLoop(listener)
            }
        }
        DaemonThread.start(name: "9p-metrics") { [self] in
            publishMetricsUntilStopped()
        }
    }

    var isStopping: Bool { registry.withLock { stopping } }

    private enum Admission {
        case slot(ServerConnection<Backend>)
        case beyondTable
        case refused
    }

    /// Accepts clients into the connection table until the listener closes.
    private func acceptLoop(_ listener: Listener) {
        // Refusals since the last one logged, and when that was (this thread's own).
        var refusals = 0
        var lastRefusalLog: UInt64 = 0
        if ioFlusher { _ = ninep_set_io_flusher() }
        while let (fd, peer) = listener.acceptPeer() {
            if !admit(fd: fd, peer: peer) {
                // Closed at once: the established clients are not touched. One log line per
                // 10 s at most, with the count since the last one (a client retrying in a loop
                // must not flood the log).
                Glibc.close(fd)
                refusals += 1
                let now = MemoryClock.nanoseconds()
                guard now &- lastRefusalLog >= 10_000_000_000 || lastRefusalLog == 0 else { continue }
                lastRefusalLog = now
                let count = refusals
                refusals = 0
                if MemoryProbe.canAllocate(bytes: Self.logLineBytes) {
                    logger.warning("refusing connection from \(peer)\(count > 1 ? " and \(count - 1) before it in the last 10 s" : ""): \(isStopping ? "shutting down" : "limit of \(configuration.maxConnections) connections reached (--max-connections)")")
                } else {
                    RawLog.write("ninepd: refusing connections: connection limit reached and memory is short\n")
                }
            }
        }
    }

    /// Serves a connected socket (accepted, or handed in by `serve(connectedSocket:peer:)`):
    /// a slot of the table, or a connection beyond it. False when refused (stopping, or
    /// --max-connections reached): the caller closes `fd`.
    func admit(fd: Int32, peer: PeerAddress) -> Bool {
        let (admission, id): (Admission, Int) = registry.withLock {
            if stopping || active.count >= configuration.maxConnections {
                connectionsRefused += 1
                return (.refused, 0)
            }
            connectionsAccepted += 1
            nextConnectionID += 1
            if let slot = idleSlots.popLast() {
                active.append(slot)
                return (.slot(slot), nextConnectionID)
            }
            return (.beyondTable, nextConnectionID)
        }
        switch admission {
        case .refused:
            return false
        case let .slot(connection):
            logConnected(peer: peer, id: id, table: "slot")
            connection.assign(fd: fd, peer: peer, id: id)
        case .beyondTable:
            acceptBeyondTable(fd: fd, peer: peer, id: id)
        }
        return true
    }

    /// A client beyond the preallocated table: its connection is allocated now, if memory
    /// allows (asked first, so a refusal is an error, not a trap), with its own reader thread.
    private func acceptBeyondTable(fd: Int32, peer: PeerAddress, id: Int) {
        guard MemoryProbe.canAllocate(bytes: ServerConnection<Backend>.slotBytes(configuration) + Self.logLineBytes) else {
            RawLog.write("ninepd: refusing a connection beyond the preallocated table: out of memory (raise --memory-budget for more connection slots)\n")
            Glibc.close(fd)
            return
        }
        let connection = ServerConnection(server: self, preallocated: false)
        guard DaemonThread.tryStart(name: "9p-out-x\(id)", { [self] in
            if ioFlusher { _ = ninep_set_io_flusher() }
            connection.writerThread()
        }) != nil else {
            RawLog.write("ninepd: refusing a connection beyond the preallocated table: no thread for it (out of memory or thread limit)\n")
            Glibc.close(fd)
            return
        }
        registry.withLock { active.append(connection) }
        connection.assign(fd: fd, peer: peer, id: id)
        guard DaemonThread.tryStart(name: "9p-conn-x\(id)", { [self] in
            if ioFlusher { _ = ninep_set_io_flusher() }
            connection.readerThread()
        }) != nil else {
            RawLog.write("ninepd: refusing a connection beyond the preallocated table: no thread for it (out of memory or thread limit)\n")
            connection.stopWriter()
            registry.withLock { remove(connection) }
            Glibc.close(fd)
            return
        }
        logConnected(peer: peer, id: id, table: "allocated")
    }

    /// The connect log line, when memory allows one.
    private func logConnected(peer: PeerAddress, id: Int, table: String) {
        logWhenMemoryAllows {
            logger.info("client connected", metadata: ["peer": "\(peer)", "connection": "\(id)", "memory": "\(table)"])
        }
    }

    /// Bytes a formatted log line may need; malloc is asked for them before one is written.
    static var logLineBytes: Int { 65536 }

    /// Runs `log` if malloc can give a log line's worth now (formatting allocates, and Swift
    /// traps when malloc refuses); otherwise counts the line as dropped.
    func logWhenMemoryAllows(_ log: () -> Void) {
        if MemoryProbe.canAllocate(bytes: Self.logLineBytes) {
            log()
        } else {
            registry.withLock { droppedLogLines += 1 }
        }
    }

    /// Takes `connection` out of `active` (registry locked). An index loop: closing a
    /// connection must not allocate, and generic algorithms do in unoptimised builds.
    private func remove(_ connection: ServerConnection<Backend>) {
        var index = 0
        while index < active.count {
            if active[index] === connection {
                active.swapAt(index, active.count - 1)
                active.removeLast()
                return
            }
            index += 1
        }
    }

    /// Called by a reader when its client's session has ended.
    func connectionClosed(_ connection: ServerConnection<Backend>) {
        logWhenMemoryAllows {
            logger.info("client disconnected", metadata: ["peer": "\(connection.peer)", "connection": "\(connection.id)"])
        }
        if let statistics = connection.statistics {
            // Before the slot can take another client: its counts move to the totals.
            metricsLock.withLock { retiredStatistics.add(statistics, zeroing: true) }
        }
        registry.withLock {
            remove(connection)
            if connection.preallocated { idleSlots.append(connection) }
            registry.broadcast()
        }
    }

    /// Pushes memory telemetry into swift-metrics about once a second.
    private func publishMetricsUntilStopped() {
        while true {
            let stop: Bool = housekeeping.withLock {
                if !isStopping { housekeeping.wait(milliseconds: 1000) }
                return isStopping
            }
            // Memory telemetry only: its wait samples sit in a ring that must be drained. The
            // request counts lose nothing by waiting for a scrape (`publishMetrics`), and
            // publishing them allocates, which a daemon with nothing to do should not.
            metricsLock.withLock { metrics.publish() }
            if stop { return }
        }
    }

    /// The connections serving a client now (localio's revocation walks them).
    func activeConnections() -> [ServerConnection<Backend>] { registry.withLock { active } }

    /// Every open connection's share in use, for the status dump, metrics and tests.
    public func connectionShares() -> [ConnectionShare] {
        registry.withLock { active }.map(share(of:))
    }

    private func share(of connection: ServerConnection<Backend>) -> ConnectionShare {
        let held = arena.holdings(of: connection.memoryWaiter)
        return ConnectionShare(
            id: connection.id, peer: "\(connection.peer)", largeBuffers: held.large, smallBuffers: held.small,
            requestsInFlight: connection.stateLock.withLock { connection.inFlightCount },
            unsentReplies: connection.writeLock.withLock { connection.outboxCount },
            fids: connection.fids.count)
    }

    /// Pushes the memory telemetry and (with `configuration.requestMetrics`) the request
    /// counts into swift-metrics now: a metrics endpoint calls it before each scrape, so what it
    /// serves is current (the housekeeping thread publishes only the memory telemetry, about
    /// once a second). Never on the request path; allocates (labels, new series, a snapshot of
    /// the connections), which is why it is asked for rather than run on a timer.
    public func publishMetrics() {
        let (open, accepted, refused) = registry.withLock { (active, connectionsAccepted, connectionsRefused) }
        metricsLock.withLock {
            metrics.publish()
            // Publishing request figures allocates (labels, new series): skipped, not
            // trapped on, while malloc refuses; the counts wait for the next round.
            guard let requestMetrics, MemoryProbe.canAllocate(bytes: 1 << 20) else { return }
            let views = open.compactMap { connection in
                connection.statistics.map { RequestMetrics.ConnectionView(share: share(of: connection), statistics: $0) }
            }
            requestMetrics.publish(retired: retiredStatistics, open: views, accepted: accepted, refused: refused)
        }
    }

    /// Every memory wait site's figures now.
    public func memoryWaitSnapshot() -> [WaitStatistics.SiteSnapshot] { arena.snapshot() }

    /// Lines for the status dump (SIGUSR1): connections, memory pools and wait sites.
    public func statusReport() -> [String] {
        let (count, table, idle, dropped) = registry.withLock { (active.count, slots.count, idleSlots.count, droppedLogLines) }
        var lines = ["\(count) connections (\(table - idle) of \(table) preallocated slots in use), \(dropped) log lines dropped while memory was short"]
        for export in exportTable.withLock({ $0 }) { lines.append("export \(export.summary)") }
        lines.append(contentsOf: arena.report())
        for share in connectionShares() {
            lines.append("connection \(share.id) (\(share.peer)): \(share.largeBuffers) of \(arena.plan.largePerConnection) large and \(share.smallBuffers) of \(arena.plan.smallPerConnection) small buffers, \(share.requestsInFlight) requests in flight, \(share.unsentReplies) replies unsent")
        }
        return lines
    }

    public var connectionCount: Int { registry.withLock { active.count } }

    /// Stops accepting, stops reading every connection, lets requests in flight finish (blocked
    /// system calls are interrupted), closes the sockets, and stops the workers.
    public func shutdown() {
        let (listeners, open): ([Listener], [ServerConnection<Backend>]) = registry.withLock {
            stopping = true
            return (self.listeners, active)
        }
        for listener in listeners { listener.close() }
        // localio: clients that keep a Tlocalrevoke outstanding drop their grants first.
        for connection in open { connection.revokeLocalGrants(fids: nil) }
        // Readers waiting for memory give up; buffers still come back from workers.
        arena.close()
        for connection in open { connection.stopReading() }
        registry.lock()
        while !active.isEmpty {
            let remaining = active
            registry.unlock()
            for connection in remaining { connection.interruptInFlight() }
            registry.lock()
            if !active.isEmpty { registry.wait(milliseconds: 50) }
        }
        registry.unlock()
        for slot in slots {
            slot.wakeIdleReader()
            slot.stopWriter()
        }
        housekeeping.withLock { housekeeping.broadcast() }
        queue.stop()
        waiter.stop()
    }
}

func strerrorBytes(_ code: Int32) -> [UInt8] {
    guard let message = strerror(code) else { return Array("error \(code)".utf8) }
    return Array(UnsafeBufferPointer(start: UnsafeRawPointer(message).assumingMemoryBound(to: UInt8.self), count: strlen(message)))
}

extension FileServer where Backend == PosixBackend {
    /// Opens every export of `configuration.effectiveExports` on the host and binds every
    /// listener; serving starts with `start()`.
    public convenience init(
        configuration: ServerConfiguration, logger: Logger, ioFlusher: Bool = false, metricsFactory: (any MetricsFactory)? = nil
    ) throws(StartError) {
        let backend: PosixBackend
        do throws(PosixBackend.OpenError) {
            backend = try PosixBackend(exportPath: configuration.effectiveExports[0].path)
        } catch {
            throw StartError(description: error.description)
        }
        try self.init(configuration: configuration, backend: backend, logger: logger, ioFlusher: ioFlusher, metricsFactory: metricsFactory)
    }
}

/// Why a server could not start.
public struct ServerStartError: Error, CustomStringConvertible {
    public let description: String
}

/// What one connection holds of its share now.
public struct ServerConnectionShare: Sendable {
    public let id: Int
    public let peer: String
    public let largeBuffers: Int
    public let smallBuffers: Int
    public let requestsInFlight: Int
    /// Replies (with their Rflushes) and lone Rflush/Rlerror frames waiting for the client.
    public let unsentReplies: Int
    /// Fids the client holds (a leak shows here).
    public let fids: Int
}
