import Glibc
import NinePTestSupport
import NinePTransport
import Synchronization
import Testing

/// Sockets handed over already listening (systemd socket activation): checked, served, and at
/// close left listening for the supervisor.
@Suite struct InheritedListenerTests {
    /// A listening TCP socket on 127.0.0.1, as systemd would bind it (the test owns its fd).
    func listeningSocket() -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        _ = listen(fd, 8)
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    @Test func adoptsAListeningSocketAndNamesItsAddress() throws {
        let (fd, port) = listeningSocket()
        let listener = try Listener(adopting: fd)
        #expect(listener.address == .tcp(host: "127.0.0.1", port: port))
        #expect(listener.boundPort == port)
    }

    @Test func closeWakesTheAcceptLoopAndLeavesTheSocketListening() throws {
        let (fd, _) = listeningSocket()
        let listener = try Listener(adopting: fd)
        let returned = ReturnedFlag()
        DaemonThread.start(name: "test-accept") {
            _ = listener.acceptPeer()
            returned.value.store(true, ordering: .sequentiallyConsistent)
        }
        usleep(100_000)
        let early = returned.value.load(ordering: .sequentiallyConsistent)
        #expect(!early, "accept waits for a connection")
        listener.close()
        let woken = waitUntil(within: .seconds(2)) { returned.value.load(ordering: .sequentiallyConsistent) }
        #expect(woken, "close() wakes the accept loop")
        var accepting: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) == 0 && accepting == 1,
                "the socket is not shut down: systemd keeps listening on it for the next start")
    }

    @Test func refusesWhatIsNotAListeningStreamSocket() throws {
        let file = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(file) }
        let bound = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(bound) }
        let datagram = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(datagram) }
        for (fd, words) in [(file, "is not a socket"), (bound, "not listening"), (datagram, "not a stream socket")] {
            do {
                _ = try InheritedSocket.listeningAddress(of: fd)
                Issue.record("descriptor \(fd) was taken for a listening socket")
            } catch {
                #expect(error.description.contains("inherited descriptor \(fd)") && error.description.contains(words), "\(error)")
            }
        }
    }
}

/// Set by the accepting thread when acceptPeer returns.
final class ReturnedFlag: Sendable {
    let value = Atomic<Bool>(false)
}
