import Glibc
import NinePTransport

/// sd_notify(3) without libsystemd: one datagram to the unix socket named in NOTIFY_SOCKET
/// (a path, or an abstract name written with a leading '@'). With Type=notify, systemd
/// considers ninepd started when READY=1 arrives, so units ordered after it (and clients of
/// its socket) see a server whose pools are locked and whose listeners accept.
enum SystemdNotify {
    /// Where to send, or nil when not started by a service manager that listens.
    static var socketPath: String? {
        guard let raw = getenv("NOTIFY_SOCKET") else { return nil }
        let path = String(cString: raw)
        guard path.hasPrefix("/") || path.hasPrefix("@") else { return nil }  // vsock: etc. are not ours to speak
        return path
    }

    /// Sends `state` ("READY=1\nSTATUS=..."); nil on success or when there is no manager,
    /// else what failed (for a warning: a manager that never hears READY=1 kills the service
    /// at its start timeout).
    @discardableResult
    static func send(_ state: String) -> String? {
        guard let path = socketPath else { return nil }
        guard path.utf8.count < 108 else { return "NOTIFY_SOCKET '\(path)' is longer than a unix socket address holds" }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "socket: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        var address = unixSocketAddress(path)
        var length = socklen_t(MemoryLayout<sa_family_t>.size + path.utf8.count)
        if path.hasPrefix("@") {
            // Abstract namespace: a NUL in place of the '@', and the length says where the
            // name ends (no terminating NUL).
            withUnsafeMutableBytes(of: &address.sun_path) { $0[0] = 0 }
        } else {
            length += 1
        }
        let sent = state.utf8CString.withUnsafeBufferPointer { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count - 1, Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
        guard sent >= 0 else { return "sendto \(path): \(String(cString: strerror(errno)))" }
        return nil
    }

    /// After start-up: pools locked, listeners accepting.
    static func ready(status: String) -> String? {
        send("READY=1\nMAINPID=\(getpid())\nSTATUS=\(status)")
    }

    /// At the start of a clean shutdown.
    static func stopping() {
        send("STOPPING=1\nSTATUS=shutting down")
    }
}
