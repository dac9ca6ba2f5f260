import CNinePShims
import Glibc
import NinePTransport

/// ^C cancels the running command's task, so that a call in flight is flushed (Tflush) rather
/// than abandoned by a dying process; a second ^C ends the process at once.
///
/// The signal handler only writes a byte to a pipe (async-signal-safe); a thread waiting on the
/// pipe does the cancelling.
enum Interrupts {
    /// The pipe: read end, write end. Created once, never closed.
    static let pipe: (read: Int32, write: Int32) = {
        var fds: [Int32] = [-1, -1]
        _ = Glibc.pipe(&fds)
        return (fds[0], fds[1])
    }()

    /// Calls `cancel` (once) on the first SIGINT or SIGTERM.
    static func onInterrupt(_ cancel: @escaping @Sendable () -> Void) {
        _ = pipe
        let handler: @convention(c) (Int32) -> Void = { _ in
            var byte: UInt8 = 1
            _ = Glibc.write(Interrupts.pipe.write, &byte, 1)
            // The next ^C takes the default action: the user really wants out.
            _ = Glibc.signal(SIGINT, SIG_DFL)
        }
        _ = Glibc.signal(SIGINT, handler)
        _ = Glibc.signal(SIGTERM, handler)
        DaemonThread.start(name: "ninep-interrupt") {
            var byte: UInt8 = 0
            while Glibc.read(Interrupts.pipe.read, &byte, 1) < 0 && errno == EINTR {}
            cancel()
        }
    }
}
