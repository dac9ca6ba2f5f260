import NinePTransport

/// Everything a server is started with; the defaults are what `ninepd` uses with no options.
public struct ServerConfiguration: Sendable {
    /// The directory exported as the attach root.
    public var exportPath: String
    public var listen: [ListenAddress]
    /// The largest msize offered; a client's Tversion is clamped to it.
    public var maxMessageSize: UInt32 = 1024 * 1024
    public var readOnly = false
    public var maxConnections = 64
    /// The kernel client with cache=loose keeps about two fids per cached inode.
    public var maxFidsPerConnection = 65536
    /// Requests in flight per connection; beyond it the server stops reading the connection
    /// until one completes (the transport pushes back), instead of failing requests.
    public var maxRequestsPerConnection = 64
    /// Worker threads for blocking file work, shared by all connections.
    public var workerThreads = 16
    /// Buffers of `maxMessageSize` bytes shared by all connections, for large reads/writes.
    public var largeBuffers = 32
    /// Mode of unix sockets (nil: by the umask).
    public var socketMode: UInt32? = nil
    /// Users who may attach (nil: everyone). Checked against the attaching uid.
    public var allowedUsers: Set<UInt32>? = nil
    /// When set, every attach runs as this uid/gid (root squash and beyond).
    public var squashUser: (uid: UInt32, gid: UInt32)? = nil
    /// Longest accepted name component (bytes); Linux's NAME_MAX.
    public var maxNameLength = 255

    /// Small messages (everything but large reads, writes and readdirs) use per-request
    /// buffers of this size; larger ones take a large buffer.
    public static let smallBufferSize = 8192 + 64

    public init(exportPath: String, listen: [ListenAddress]) {
        self.exportPath = exportPath
        self.listen = listen
    }

    public static let minimumMessageSize: UInt32 = 4096
}
