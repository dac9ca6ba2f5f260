import Glibc
import NinePTestSupport
import NinePTransport
import Testing

/// What the listener sets on the sockets it accepts.
@Suite struct ListenerTests {
    /// Accepted TCP connections probe an idle peer, so that a client host that vanished
    /// (powered off, cable cut) frees its connection slot and fids instead of holding them forever.
    @Test func acceptedTCPConnectionsHaveKeepalive() throws {
        let listener = try Listener(.tcp(host: "127.0.0.1", port: 0))
        defer { listener.close() }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(client) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = listener.boundPort.bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0, "connect: errno \(errno)")
        guard let (accepted, _) = listener.acceptPeer() else {
            Issue.record("accept failed")
            return
        }
        defer { close(accepted) }

        #expect(option(accepted, SOL_SOCKET, SO_KEEPALIVE) == 1, "SO_KEEPALIVE is off")
        // The values Listener's comment explains: a dead peer is found 60 + 6 x 10 s after it
        // went silent.
        #expect(option(accepted, Int32(IPPROTO_TCP), TCP_KEEPIDLE) == 60)
        #expect(option(accepted, Int32(IPPROTO_TCP), TCP_KEEPINTVL) == 10)
        #expect(option(accepted, Int32(IPPROTO_TCP), TCP_KEEPCNT) == 6)
        #expect(option(accepted, Int32(IPPROTO_TCP), TCP_NODELAY) == 1, "TCP_NODELAY is still set")
    }

    /// An integer socket option, or -1 if it cannot be read.
    func option(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32 {
        var value: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, name, &value, &length) == 0 else { return -1 }
        return value
    }
}
