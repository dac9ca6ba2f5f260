import Glibc
import NinePClient
import NinePMemory
import NinePTransport

/// Everything `ninep mount` needs to know; the command line only fills this in.
public struct NinePMountOptions: Sendable {
    public var client: ClientConfiguration
    public var mountpoint: String
    /// Shown as the source in /proc/mounts.
    public var source: String
    public var allowOther = false
    public var defaultPermissions = false
    public var readOnly = false
    /// The readahead window in bytes (0: the kernel's 128 KiB); by default max_write, and at
    /// least 128 KiB.
    public var readahead: Int? = nil
    public var session = FuseSessionConfiguration()
    /// mlockall the daemon (its slots are allocated and touched first), so that serving the
    /// mount never waits on swap-in under memory pressure.
    public var lockMemory = true
    public var fileSystem = NinePFileSystemOptions()

    public init(client: ClientConfiguration, mountpoint: String, source: String) {
        self.client = client
        self.mountpoint = mountpoint
        self.source = source
    }
}

/// Connects to the server, mounts, and serves the mount until it is unmounted (or the task is
/// cancelled, which unmounts it).
public enum NinePMount {
    /// Runs in the calling task. `ready` is called once the kernel has answered INIT, that is
    /// once the mount is usable.
    public static func run(_ options: NinePMountOptions, log: @escaping @Sendable (String) -> Void, ready: @Sendable () -> Void = {}) async throws {
        guard let mountpoint = FuseMounter.canonical(options.mountpoint) else {
            throw FuseMountError.system("cannot mount on \(options.mountpoint)", errno, hint: "the mount point must be an existing directory")
        }
        if FuseMounter.mountedDevice(at: mountpoint) != nil {
            throw FuseMountError("\(mountpoint) already has a FUSE mount: unmount it first (ninep umount \(mountpoint))", errno: EBUSY)
        }
        // The daemon runs in whatever memory it is given (a 64 MiB cgroup in the pressure
        // test): malloc keeps no per-thread arenas of freed memory.
        MemoryHardening.boundHeapRetention()
        // Every thread this daemon starts from here (the client's reader, sender, housekeeper
        // and executor, the FUSE reader) serves IO: PR_SET_IO_FLUSHER on each.
        DaemonThread.setIOFlusherOnNewThreads()
        // The mount's own attach, in the server's numbering when ids are mapped.
        var configuration = options.client
        var fileSystemOptions = options.fileSystem
        let attachUID = configuration.uid.map { fileSystemOptions.identity.uidMap.local($0) } ?? ClientConfiguration.numericUser(for: configuration.uname)
        if configuration.uid == nil && !fileSystemOptions.identity.uidMap.isEmpty { configuration.uid = fileSystemOptions.identity.uidMap.server(attachUID) }
        fileSystemOptions.identity.attachUID = attachUID
        // With allow_other other users reach the mount: mounted by root, each gets an attach of
        // its own. Otherwise FUSE lets only the mounting user in, and its attach is the one.
        fileSystemOptions.identity.perUserAttach = options.allowOther && geteuid() == 0
        // Each worker has one call in flight at a time; a few more slots take the housekeeper's
        // background clunks, and one more per read-ahead lane (each may hold one while its
        // data waits for the READ that takes it). Their buffers (msize each) are allocated and
        // touched now, so no burst ever mallocs one later.
        configuration.maxInFlight = min(configuration.maxInFlight, options.session.slots + 4 + NinePFileSystem.readAheadLanes(options.fileSystem))
        configuration.preallocateBuffers = true
        // The FUSE workers read their own 9P replies (NinePFileSystem.runWorker).
        configuration.callersRead = true
        // A lost connection does not leave a dead mount: calls fail with EIO while the server
        // is away (nothing waits on it), then the client reconnects and re-walks its fids.
        let server = options.source
        configuration.reconnect = ReconnectPolicy { event in
            switch event {
            case .lost:
                log("connection to \(server) lost: calls fail with EIO until it is back; reconnecting")
            case let .attemptFailed(error):
                log("reconnecting to \(server): \(error); trying again (at most every 2 s)")
            case let .reconnected(rewalked, broken):
                log("reconnected to \(server): \(rewalked) fids re-walked, \(broken) broken")
            }
        }
        let passthroughMode = options.fileSystem.passthrough
        try PassthroughSetup.prepare(passthroughMode, &configuration, writebackCache: options.session.writebackCache)
        let client: NinePClient
        do {
            client = try await NinePClient.connect(configuration)
        } catch let error as NinePError where passthroughMode == .on && error.errno == EPROTONOSUPPORT {
            throw FuseMountError("-o passthrough=on: \(error)", errno: EPROTONOSUPPORT)
        }
        defer { client.close() }
        let root = try await client.walk("/")

        var session = options.session
        session.passthrough = PassthroughSetup.offer(passthroughMode, client: client, writebackCache: session.writebackCache, log: log)
        // No WRITE larger than one Twrite can carry, so each FUSE write is one 9P round trip.
        session.maxWrite = min(session.maxWrite, client.maxIOSize & ~4095)
        var parameters = FuseMountParameters(mountpoint: mountpoint, source: options.source)
        parameters.allowOther = options.allowOther
        parameters.defaultPermissions = options.defaultPermissions
        parameters.readOnly = options.readOnly
        parameters.maxRead = UInt32(session.effectiveMaxWrite)

        let fd = try FuseMounter.mount(parameters)
        let fuse = FuseSession(fd: fd, mountpoint: mountpoint, configuration: session, log: log)
        if options.lockMemory {
            let code = MemoryHardening.lockAll()
            if code != 0 {
                log("warning: mlockall refused (\(String(cString: strerror(code)))): the daemon may be swapped out under memory pressure; raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK")
            }
        }
        // The file system's tables are made resident as they are built (see reserveResident):
        // what that took is measured, for the start-up line.
        let anonymousBefore = ProcessMemory.residentAnonymousBytes()
        let fileSystem = NinePFileSystem(client: client, root: root, options: fileSystemOptions, slots: session.slots, log: log)
        let tableBytes = max(0, (ProcessMemory.residentAnonymousBytes() ?? 0) - (anonymousBefore ?? 0))
        defer { fileSystem.stop() }
        do {
            let agreed = try await fuse.start(handler: fileSystem)
            if agreed.flags.contains(.passthrough) {
                fileSystem.enablePassthrough(fuseFD: fd)
            } else if passthroughMode == .on {
                throw FuseMountError("-o passthrough=on: the kernel did not agree to FUSE_PASSTHROUGH in INIT (it needs Linux 6.9 or later built with CONFIG_FUSE_PASSTHROUGH)", errno: EOPNOTSUPP)
            }
        } catch {
            try? FuseMounter.unmount(mountpoint, lazy: true)
            throw error
        }
        // Never below the kernel's own 128 KiB: a small msize (diod's 64 KiB) still reads ahead.
        let readahead = options.readahead ?? max(session.effectiveMaxWrite, 128 * 1024)
        if readahead > 0 {
            let code = FuseMounter.setReadahead(of: mountpoint, kib: readahead / 1024)
            if code != 0 { log("warning: could not set the readahead window to \(readahead / 1024) KiB (\(String(cString: strerror(code)))): sequential reads go 128 KiB at a time") }
        }
        let (refused, code) = DaemonThread.ioFlusherRefusals
        if refused > 0 {
            log("warning: PR_SET_IO_FLUSHER refused on \(refused) threads (\(String(cString: strerror(code)))): under memory pressure the kernel may make this daemon wait on its own writeback; it needs CAP_SYS_RESOURCE")
        }
        // What was allocated and touched at start (the request path takes nothing more): the
        // session's buffers, the client's message buffers (one per call in flight) and the
        // file system's tables.
        let preallocated = session.preallocatedBytes + configuration.maxInFlight * Int(client.msize) + tableBytes
        log("mounted \(options.source) on \(mountpoint) (msize \(client.msize), cache=\(options.fileSystem.cache.rawValue), data \(PassthroughSetup.dataPath(fileSystem, client: client, mode: passthroughMode)), \(session.slots) request slots of \(session.requestBytes / 1024) KiB + \(session.replyBytes / 1024) KiB, \(preallocated >> 20) MiB preallocated)")
        StatusSignal.onSignal { [fuse, fileSystem] in
            let allocations = AllocationCount.read().map { ", \($0) allocations so far" } ?? ""
            log("status: \(fileSystem.nodeCount) nodes, \(fileSystem.handleCount) open handles, \(fileSystem.requestsInFlight) requests in flight, \(fuse.freeSlots) of \(fuse.configuration.slots) slots free, \(fuse.heldRequests) requests queued, \(client.tagsInUse) 9P tags in use, \(followerSummary(client.followers)), \(fileSystem.lockOwnerCount) lock owner fids\(allocations)\(fileSystem.identitySummary)\(fileSystem.dataPathSummary)\(fileSystem.readAheadSummary)")
        }
        ready()
        await withTaskCancellationHandler {
            await fuse.waitUntilEnded()
        } onCancel: {
            unmountForExit(mountpoint, log: log)
        }
        log("\(mountpoint) unmounted")
    }

    /// Unmounts on the way out: normally, else lazily when something still uses the mount (it
    /// then goes away when the last user lets go; this process serves it until then).
    static func unmountForExit(_ mountpoint: String, log: @Sendable (String) -> Void) {
        do {
            try FuseMounter.unmount(mountpoint)
        } catch let error where error.errno == EBUSY {
            log("\(mountpoint) is busy: detaching it; it stays served until its last user lets go")
            try? FuseMounter.unmount(mountpoint, lazy: true)
        } catch {
            log("\(error)")
        }
    }
}

/// The status line's account of requests sent behind another's (`NinePClient.followers`).
func followerSummary(_ followers: (collected: Int, ranFirst: Int, on: Bool)) -> String {
    "\(followers.collected) Tgetattrs sent behind their Twalk or Tlcreate (\(followers.ranFirst) run first by the server\(followers.on ? "" : "; no more sent: the server runs them out of order"))"
}
