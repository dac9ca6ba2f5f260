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

/// The malloc count of an LD_PRELOAD interposer exporting `uint64_t ninep_alloc_calls(void)`
/// (Tools/alloccount), when one is loaded: the status line then says how many allocations the
/// whole process has made, so that allocations per request can be measured from outside.
enum AllocationCount {
    typealias Reader = @convention(c) () -> UInt64

    /// The function's address (an integer, so the constant is Sendable); 0 when not loaded.
    static let address: UInt = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "ninep_alloc_calls") else { return 0 }
        return UInt(bitPattern: symbol)
    }()

    static func read() -> UInt64? {
        guard let pointer = UnsafeRawPointer(bitPattern: address) else { return nil }
        return unsafeBitCast(pointer, to: Reader.self)()
    }
}

