import NinePTransport

/// Everything a server is started with; the defaults are what `ninepd` uses with no options.
///
/// Exports: `exports`, when not empty, lists every export by aname (the first is the default,
/// what an empty aname attaches). When empty, the server has one export made from the
/// one-export fields `exportPath`, `readOnly`, `allowedUsers`, `squashUser` and `access`
/// (`defaultExport`), which the list ignores otherwise.
public struct ServerConfiguration: Sendable {
    /// The directory exported as the attach root (one-export form; see `exports`).
    public var exportPath: String
    /// Every export by aname, the default first (empty: the one-export fields).
    public var exports: [ExportConfiguration] = []
    public var listen: [ListenAddress]
    /// Descriptors of sockets already bound and listening, served besides `listen` (systemd
    /// socket activation). The server takes them over: checked at start, closed when it goes.
    public var inheritedListeners: [Int32] = []
    /// The largest msize offered; a client's Tversion is clamped to it.
    public var maxMessageSize: UInt32 = 1024 * 1024
    /// One-export form: every change is refused with EROFS (see `exports`).
    public var readOnly = false
    public var maxConnections = 64
    /// The kernel client with cache=loose keeps about two fids per cached inode.
    public var maxFidsPerConnection = 65536
    /// Requests in flight per connection; beyond it the server stops reading the connection
    /// until one completes (the transport pushes back), instead of failing requests.
    public var maxRequestsPerConnection = 64
    /// Worker threads for blocking file work, shared by all connections.
    public var workerThreads = 16
    /// Bytes for every buffer, request context and fid slot on the request path, allocated
    /// and locked at start-up (nil: derived from msize, workers and connections).
    public var memoryBudget: Int? = nil
    /// Forces the number of msize-sized buffers (tests); nil: derived from the budget.
    public var largeBuffers: Int? = nil
    /// Fid slots each preallocated connection slot holds; beyond them a table grows only if
    /// memory allows (else Rlerror ENOMEM).
    public var preallocatedFidsPerConnection = 256
    /// Mode of unix sockets (nil: by the umask).
    public var socketMode: UInt32? = nil
    /// Users who may attach (nil: everyone). Checked against the attaching uid.
    public var allowedUsers: Set<UInt32>? = nil
    /// When set, every attach runs as this uid/gid (root squash and beyond).
    public var squashUser: (uid: UInt32, gid: UInt32)? = nil
    /// Longest accepted name component (bytes); Linux's NAME_MAX.
    public var maxNameLength = 255
    /// Start writeback of every write of 64 KiB or more at once (sync_file_range), so dirty
    /// page cache cannot fill a memory cgroup (see `MemoryCgroup`). Off, writes stay in the page
    /// cache as the kernel sees fit: faster, and no disk wait in front of a reply or an Rflush.
    public var writeBehind = false
    /// A client that sends part of a message and then nothing, or takes none of its replies,
    /// for this long is disconnected (its fids clunked). An idle client with nothing in
    /// flight is never dropped. 0: never.
    public var clientTimeoutMilliseconds = 60_000
    /// Who checks permissions (see `AccessMode`).
    public var access: AccessMode = .user
    /// Count every request by type, errno and latency for `FileServer.publishMetrics()` (a few
    /// relaxed atomic adds per request on counters of its own connection; off: none at all).
    public var requestMetrics = false


    public init(exportPath: String, listen: [ListenAddress]) {
        self.exportPath = exportPath
        self.listen = listen
    }

    public static let minimumMessageSize: UInt32 = 4096

    /// The export the one-export fields describe, unnamed (an empty aname or its path).
    public var defaultExport: ExportConfiguration {
        var export = ExportConfiguration(name: "", path: exportPath)
        export.readOnly = readOnly
        export.allowedUsers = allowedUsers
        export.squash = squashUser.map { SquashIdentity(uid: $0.uid, gid: $0.gid) }
        export.access = access
        return export
    }

    /// What the server exports: `exports`, or the one export of the one-export fields.
    public var effectiveExports: [ExportConfiguration] { exports.isEmpty ? [defaultExport] : exports }
}

/// Who checks permissions, as the Linux client's `access=` mount option names it.
public enum AccessMode: String, Sendable, CaseIterable, Equatable {
    /// Every request runs as the attaching user, with the groups this host lists for it
    /// (server-side checks; mount with access=user).
    case user
    /// Requests run with the server's own privileges inside the export; a new file gets the
    /// attaching user as owner and the group and mode the request names, and the client's
    /// kernel checks permissions with the caller's real groups (mount with access=client, as
    /// QEMU's passthrough model does for VMs). Only for clients trusted with the whole export:
    /// any of them can act as any user on it. Needs root; not with a squash user.
    case client
}
