import Glibc
import NinePTransport
import NinePWire

/// How a `NinePClient` connects and how its calls behave.
public struct ClientConfiguration: Sendable {
    /// Where the server listens: `tcp:HOST:PORT` or `unix:PATH`.
    public var address: ListenAddress
    /// The user name sent in Tattach.
    public var uname: String
    /// The attach name: which export (or subtree) to attach; servers such as diod require the
    /// exported path here, ninepd accepts an empty name.
    public var aname: String
    /// Numeric user id for Tattach (n_uname); `nil`: the uid of `uname` (see
    /// `numericUser(for:)`), never the process's own uid for another user's name.
    public var uid: UInt32?
    /// Largest message asked for in Tversion; the server may offer less.
    public var msize: UInt32
    /// Requests in flight at once on the connection; more callers wait for a free slot. Each slot
    /// owns a buffer of `msize` bytes (allocated the first time the slot is used).
    public var maxInFlight: Int
    /// Default time limit of every call; `nil` waits as long as the server takes. One call can
    /// use another limit with `NinePClient.withCallTimeout(_:_:)`.
    public var callTimeout: Duration?
    /// After a Tflush, how long a cancelled or timed-out call waits for the server to settle it
    /// (its reply, which is then returned, or Rflush) before the caller gets control back anyway.
    public var flushGrace: Duration
    /// Allocate and touch every slot's buffer when connecting instead of on first use, so that
    /// no call ever mallocs one later (a burst that needs one more slot than ever before would
    /// otherwise take `msize` bytes then). For daemons with a fixed memory budget (the FUSE
    /// mount); costs `maxInFlight` x `msize` up front.
    public var preallocateBuffers = false
    /// Let a caller that waits for a reply on a thread of its own read the socket itself while
    /// nobody else does (`CallerReads`), instead of the reader thread waking it: one thread
    /// wake-up less per round trip. Only tasks bound to `CallerReads.$allowed` do so (the FUSE
    /// mount's workers, each the only task of its thread); without localio only.
    public var callersRead = false
    /// Whether file data moves by descriptor when the server shares this host (localio,
    /// docs/LOCALIO.md): offered only on unix sockets.
    public var localIO: LocalIOMode = .automatic
    /// Reconnect when the connection is lost, re-walking live fids (nil: a lost connection
    /// stays lost, every later call fails). See `ReconnectPolicy`.
    public var reconnect: ReconnectPolicy? = nil

    public init(
        address: ListenAddress, uname: String = ClientConfiguration.currentUserName, aname: String = "",
        uid: UInt32? = nil, msize: UInt32 = 1 << 20, maxInFlight: Int = 32, callTimeout: Duration? = nil,
        flushGrace: Duration = .milliseconds(250)
    ) {
        self.address = address
        self.uname = uname
        self.aname = aname
        self.uid = uid
        self.msize = msize
        self.maxInFlight = maxInFlight
        self.callTimeout = callTimeout
        self.flushGrace = flushGrace
    }

    /// n_uname for a user name: the process's uid for its own login name; else the uid this
    /// host's user database lists for the name, or the number when the name is one; else
    /// NONUNAME (0xFFFFFFFF), which asks the server to look the name up itself. Root attaching
    /// as "nobody" thus acts as nobody, not as root.
    public static func numericUser(for name: String) -> UInt32 {
        if name == currentUserName { return getuid() }
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var scratch = [CChar](repeating: 0, count: 4096)
        if getpwnam_r(name, &entry, &scratch, scratch.count, &result) == 0, result != nil { return entry.pw_uid }
        if let number = UInt32(name), number != NineP.noUid { return number }
        return NineP.noUid
    }

    /// The primary group of the user `name` for creations: the process's gid for its own
    /// login name, the group this host lists for another name, else NONUNAME (0xFFFFFFFF:
    /// no group named; ninepd then leaves the file in the group the server's user gets).
    public static func numericGroup(for name: String) -> UInt32 {
        if name == currentUserName { return getgid() }
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var scratch = [CChar](repeating: 0, count: 4096)
        if getpwnam_r(name, &entry, &scratch, scratch.count, &result) == 0, result != nil { return entry.pw_gid }
        if let number = UInt32(name), number != NineP.noUid {
            var byNumber = passwd()
            if getpwuid_r(number, &byNumber, &scratch, scratch.count, &result) == 0, result != nil { return byNumber.pw_gid }
            return number
        }
        return NineP.noUid
    }

    /// The login name of the process's uid, or the number when the user is unknown.
    public static var currentUserName: String {
        let uid = getuid()
        if let entry = getpwuid(uid), let name = entry.pointee.pw_name { return String(cString: name) }
        return String(uid)
    }
}
