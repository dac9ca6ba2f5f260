import CNinePShims
import Glibc

/// What sits at a unix socket path before a listener binds it. A socket file outlives the
/// server that made it when that server dies without cleaning up (SIGKILL, a crash), and bind()
/// fails on it; but the same file may belong to a server still running, and unlinking that one
/// would leave it serving nobody, its clients unable to reconnect. Only connect() tells the
/// two apart.
enum UnixSocketOccupant: Equatable {
    /// No file there: bind creates one.
    case nothing
    /// A socket nobody accepts on (connect() is refused): left by a server that is gone.
    case stale
    /// A socket a server accepts on (connect() succeeds, or its backlog is full).
    case live
    /// A file of another kind: never removed.
    case notASocket
    /// connect() failed otherwise (e.g. EACCES): left alone; bind says what is wrong.
    case unknown

    /// Looks at `path`. A live server sees the probe as a client that connects and hangs up
    /// at once (one "client connected" and one "client disconnected" log line).
    static func at(_ path: String) -> UnixSocketOccupant {
        var st = stat()
        guard lstat(path, &st) == 0 else { return .nothing }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else { return .notASocket }
        // Non-blocking: a busy server's full backlog gives EAGAIN at once instead of a wait.
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard probe >= 0 else { return .unknown }
        defer { Glibc.close(probe) }
        var address = unixSocketAddress(path)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc == 0 { return .live }
        switch errno {
        case EAGAIN, EINPROGRESS: return .live
        case ECONNREFUSED: return .stale
        case ENOENT: return .nothing  // removed meanwhile
        default: return .unknown
        }
    }
}
