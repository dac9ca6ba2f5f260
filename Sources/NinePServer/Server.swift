import CNinePShims
import Glibc
import Logging
import NinePMemory
import NinePTransport
import Synchronization

/// A 9P2000.L file server: listeners, connections, the worker pool, and the exported root.
public final class Server: @unchecked Sendable {
    // @unchecked Sendable: immutable after init except `connections`, `listeners` and
    // `acceptedCount`, which are guarded by `registry`.
    public let configuration: ServerConfiguration
    let logger: Logger
    let rootFd: Int32
    let rootDevice: UInt64
    let rootInode: UInt64
    let rootRealPath: String
    let qids: QidMapper
    let users = UserDirectory()
    let queue: WorkQueue
    let largeBuffers: BufferPool
    let waiter = ReadinessWaiter()
    /// Root: each request runs with the attaching user's fsuid/fsgid/groups.
    let switchesIdentity: Bool
    let ioFlusher: Bool
    /// Log every request and its reply (--log-level trace).
    let tracesRequests: Bool
    private let registry = ConditionLock()
    private var connections: [Int: Connection] = [:]
    private var listeners: [Listener] = []
    private var nextConnectionID = 0
    private var stopping = false

    public struct StartError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Opens the export and binds every listener; serving starts with `start()`.
    public init(configuration: ServerConfiguration, logger: Logger, ioFlusher: Bool = false) throws(StartError) {
        self.configuration = configuration
        self.logger = logger
        self.ioFlusher = ioFlusher
        let fd = open(configuration.exportPath, NINEP_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StartError(description: "cannot open export directory '\(configuration.exportPath)': \(String(decoding: strerrorBytes(errno), as: UTF8.self)); give an existing directory with --export")
        }
        var st = statx()
        guard ninep_statx(fd, "", NINEP_AT_EMPTY_PATH, UInt32(STATX_BASIC_STATS), &st) == 0 else {
            throw StartError(description: "cannot stat export directory '\(configuration.exportPath)'")
        }
        rootFd = fd
        rootDevice = st.deviceID
        rootInode = st.stx_ino
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        if realpath(configuration.exportPath, &resolved) != nil {
            rootRealPath = String(decoding: resolved.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        } else {
            rootRealPath = configuration.exportPath
        }
        qids = QidMapper(rootDevice: rootDevice)
        switchesIdentity = geteuid() == 0
        let contexts = configuration.maxConnections * configuration.maxRequestsPerConnection
        queue = WorkQueue(capacity: contexts)
        largeBuffers = BufferPool(bufferSize: Int(configuration.maxMessageSize) + RequestContext.alignmentSlack, capacity: configuration.largeBuffers)
        tracesRequests = logger.logLevel <= .trace
        for address in configuration.listen {
            do {
                listeners.append(try Listener(address, socketMode: configuration.socketMode.map { mode_t($0) }))
            } catch {
                for listener in listeners { listener.close() }
                throw StartError(description: "cannot listen on \(error)")
            }
        }
        let mount = ninep_reopen(fd, O_RDONLY | O_DIRECTORY)
        if mount >= 0 { mountDescriptors.withLock { $0[rootDevice] = mount } }
    }

    deinit { Glibc.close(rootFd) }

    /// One descriptor per device under the export, for open_by_handle_at.
    private let mountDescriptors = Mutex<[UInt64: Int32]>([:])
    private let evictions = Atomic<Int>(0)

    /// open_by_handle_at needs a real open descriptor (not NINEP_O_PATH) on the same mount: a
    /// directory opened O_RDONLY, one per device, the export's own opened with the root.
    func mountDescriptor(device: UInt64) -> Int32? {
        mountDescriptors.withLock { $0[device] }
    }

    /// Descriptor pressure: idle fids give back their NINEP_O_PATH descriptors (a quarter of them,
    /// least recently used first, from `connection` and then from the others), keeping file
    /// handles to reopen them. Only as root (open_by_handle_at needs CAP_DAC_READ_SEARCH).
    func relieveDescriptorPressure(preferring connection: Connection) -> Int {
        guard switchesIdentity else { return 0 }
        let record: (UInt64, Int32, Bool) -> Bool = { [self] device, fd, isDirectory in
            mountDescriptors.withLock { table in
                if table[device] != nil { return true }
                guard isDirectory else { return false }
                let directory = ninep_reopen(fd, O_RDONLY | O_DIRECTORY)
                guard directory >= 0 else { return false }
                table[device] = directory
                return true
            }
        }
        var closed = connection.fids.evictIdle(fraction: 0.25, mountFd: record)
        if closed == 0 {
            for other in registry.withLock({ Array(connections.values) }) where other !== connection {
                closed += other.fids.evictIdle(fraction: 0.25, mountFd: record)
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

    /// Starts the workers and one accept thread per listener.
    public func start() {
        _ = ninep_install_interrupt_handler(ninep_interrupt_signal())
        waiter.start(name: "9p-waiter")
        for index in 0..<configuration.workerThreads {
            DaemonThread.start(name: "9p-worker-\(index)") { [self] in
                Worker(server: self).run()
            }
        }
        for listener in registry.withLock({ listeners }) {
            DaemonThread.start(name: "9p-accept") { [self] in
                acceptLoop(listener)
            }
        }
    }

    private func acceptLoop(_ listener: Listener) {
        if ioFlusher { _ = ninep_set_io_flusher() }
        while let (fd, peer) = listener.accept() {
            let connection: Connection? = registry.withLock {
                if stopping || connections.count >= configuration.maxConnections { return nil }
                nextConnectionID += 1
                let connection = Connection(server: self, fd: fd, peer: peer, id: nextConnectionID)
                connections[connection.id] = connection
                return connection
            }
            guard let connection else {
                logger.warning("refusing connection from \(peer): \(stopping ? "shutting down" : "limit of \(configuration.maxConnections) connections reached (--max-connections)")")
                Glibc.close(fd)
                continue
            }
            logger.info("client connected", metadata: ["peer": "\(peer)", "connection": "\(connection.id)"])
            DaemonThread.start(name: "9p-conn-\(connection.id)") { [self] in
                if ioFlusher { _ = ninep_set_io_flusher() }
                connection.readLoop()
            }
        }
    }

    func connectionClosed(_ connection: Connection) {
        registry.withLock {
            connections[connection.id] = nil
            registry.broadcast()
        }
        logger.info("client disconnected", metadata: ["peer": "\(connection.peer)", "connection": "\(connection.id)"])
    }

    /// True when `st` describes the exported directory itself.
    func isExportRoot(_ st: statx) -> Bool { st.deviceID == rootDevice && st.stx_ino == rootInode }

    public var connectionCount: Int { registry.withLock { connections.count } }

    /// Stops accepting, stops reading every connection, lets requests in flight finish (blocked
    /// system calls are interrupted), closes the sockets, and stops the workers.
    public func shutdown() {
        let (listeners, open): ([Listener], [Connection]) = registry.withLock {
            stopping = true
            return (self.listeners, Array(connections.values))
        }
        for listener in listeners { listener.close() }
        // Readers waiting for a large buffer give up; buffers still come back from workers.
        largeBuffers.close()
        for connection in open { connection.stopReading() }
        registry.lock()
        while !connections.isEmpty {
            let remaining = Array(connections.values)
            registry.unlock()
            for connection in remaining { connection.interruptInFlight() }
            registry.lock()
            if !connections.isEmpty { registry.wait(milliseconds: 50) }
        }
        registry.unlock()
        queue.stop()
        waiter.stop()
    }
}

func strerrorBytes(_ code: Int32) -> [UInt8] {
    guard let message = strerror(code) else { return Array("error \(code)".utf8) }
    return Array(UnsafeBufferPointer(start: UnsafeRawPointer(message).assumingMemoryBound(to: UInt8.self), count: strlen(message)))
}

extension Server {
    /// The export as given and, when different, where it resolves.
    public var exportDescription: String {
        configuration.exportPath == rootRealPath ? rootRealPath : "\(configuration.exportPath) (\(rootRealPath))"
    }
}
