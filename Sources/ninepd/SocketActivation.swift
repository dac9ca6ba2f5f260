import ArgumentParser
import Glibc

/// systemd socket activation (sd_listen_fds(3), without libsystemd): when LISTEN_PID is this
/// process and LISTEN_FDS is N, descriptors 3 to 3+N-1 are sockets already bound and listening,
/// which ninepd serves instead of binding --listen addresses itself.
enum SocketActivation {
    /// The first descriptor systemd passes (SD_LISTEN_FDS_START).
    static let firstDescriptor: Int32 = 3

    /// The descriptors passed to this process, or none. The variables are removed either way,
    /// so that nothing this process starts mistakes them for its own. Each descriptor is
    /// checked by the listener that adopts it (a listening stream socket).
    static func takeDescriptors() throws -> [Int32] {
        let pidText = getenv("LISTEN_PID").map { String(cString: $0) }
        let countText = getenv("LISTEN_FDS").map { String(cString: $0) }
        defer {
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_FDNAMES")
        }
        guard let pidText, let countText else { return [] }
        // Meant for another process (a parent that exec'd without clearing them): not ours.
        guard let pid = pid_t(pidText), pid == getpid() else { return [] }
        guard let count = Int32(countText), count >= 0, count <= 4096 else {
            throw ValidationError("LISTEN_FDS='\(countText)' is not a number of descriptors: the service manager passed a malformed socket-activation environment")
        }
        return (0..<count).map { firstDescriptor + $0 }
    }
}
