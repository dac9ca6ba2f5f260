import Glibc
import NinePTransport

/// SIGUSR1 makes the mount daemon log one status line (nodes, handles, requests, slots, tags),
/// as it makes ninepd log its memory. The handler only writes a byte to a pipe
/// (async-signal-safe); a thread of its own reads the pipe and logs.
enum StatusSignal {
    /// The pipe: read end, write end. Created once, never closed.
    static let pipe: (read: Int32, write: Int32) = {
        var fds: [Int32] = [-1, -1]
        _ = Glibc.pipe(&fds)
        return (fds[0], fds[1])
    }()

    static func onSignal(_ report: @escaping @Sendable () -> Void) {
        _ = pipe
        let handler: @convention(c) (Int32) -> Void = { _ in
            let saved = errno
            var byte: UInt8 = 1
            _ = Glibc.write(StatusSignal.pipe.write, &byte, 1)
            errno = saved
        }
        _ = Glibc.signal(SIGUSR1, handler)
        DaemonThread.start(name: "fuse-status") {
            var byte: UInt8 = 0
            while true {
                let n = Glibc.read(StatusSignal.pipe.read, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                report()
            }
        }
    }
}
