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
    /// Numeric user id for Tattach (n_uname); `nil` sends the process's uid.
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

    /// The login name of the process's uid, or the number when the user is unknown.
    public static var currentUserName: String {
        let uid = getuid()
        if let entry = getpwuid(uid), let name = entry.pointee.pw_name { return String(cString: name) }
        return String(uid)
    }
}
