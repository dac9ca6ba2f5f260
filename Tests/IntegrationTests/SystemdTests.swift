import Foundation
import NinePTestSupport
import Testing

/// ninepd under systemd, without systemd running: the units pass `systemd-analyze verify`,
/// ninepd serves a listening socket handed to it as descriptor 3 (LISTEN_PID/LISTEN_FDS, as
/// systemd's socket activation does), refuses a descriptor that is not one, and sends READY=1
/// to NOTIFY_SOCKET only once its listener accepts connections, STOPPING=1 when it stops.
@Suite(.serialized)
struct SystemdTests {
    static var ninep: String { Paths.ninepd.deletingLastPathComponent().appendingPathComponent("ninep").path }

    static let hasAnalyze = FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")

    @Test(.enabled(if: hasAnalyze, "needs systemd-analyze"))
    func unitsPassSystemdAnalyzeVerify() throws {
        let directory = try Paths.temporaryDirectory("ninepd-units")
        defer { try? FileManager.default.removeItem(at: directory) }
        // The unit names the installed binary; verify checks that it exists and is executable,
        // so the copy names the one just built, as scripts/install rewrites it for its prefix.
        let unit = try String(contentsOf: Paths.packageRoot.appendingPathComponent("systemd/ninepd.service"), encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/local/sbin/ninepd "), "the unit's ExecStart is what scripts/install rewrites")
        try unit.replacingOccurrences(of: "/usr/local/sbin/ninepd", with: Paths.ninepd.path)
            .write(to: directory.appendingPathComponent("ninepd.service"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: Paths.packageRoot.appendingPathComponent("systemd/ninepd.socket"),
                                         to: directory.appendingPathComponent("ninepd.socket"))
        let service = directory.appendingPathComponent("ninepd.service").path
        let socket = directory.appendingPathComponent("ninepd.socket").path
        let result = try run("/usr/bin/systemd-analyze", ["verify", "--man=no", service, socket], timeout: .seconds(60))
        // verify exits 0 on unknown keys and unparsable values and only prints them: any
        // output is a finding.
        #expect(result.status == 0 && result.output.isEmpty, "systemd-analyze verify: status \(result.status): \(result.output)")
    }

    @Test func servesASocketPassedAsDescriptor3AndNotifiesReadyAndStopping() throws {
        let root = try Paths.temporaryDirectory("ninepd-activation")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        try Data("activated\n".utf8).write(to: export.appendingPathComponent("hello.txt"))
        let listener = try LoopbackListener()
        let notify = try NotifySocket(path: root.appendingPathComponent("notify").path)
        // LISTEN_PID must be ninepd's own pid: the shell's, which exec keeps.
        let log = root.appendingPathComponent("ninepd.log")
        let child = try Spawned(
            "/bin/sh", ["-c", "LISTEN_PID=$$ LISTEN_FDS=1 NOTIFY_SOCKET=\"$0\" exec \"$@\"", notify.path,
                        Paths.ninepd.path, "--export", export.path, "--memory-budget", "16M"],
            output: log.path, descriptors: [(listener.fd, 3)])
        defer { child.terminate() }
        let logText = { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        let ready = notify.receive(within: .seconds(30))
        #expect(ready?.contains("READY=1") == true, "no READY=1 within 30 s; log: \(logText())")
        #expect(ready?.contains("MAINPID=\(child.pid)") == true, "READY names ninepd's pid \(child.pid): \(ready ?? "")")
        #expect(logText().contains("\(export.path) (read-write") && logText().contains(") on tcp:127.0.0.1:\(listener.port):"),
                "the start-up line names the inherited socket: \(logText())")
        #expect(!logText().contains("5640"), "with a socket from systemd and no --listen, ninepd binds nothing of its own: \(logText())")

        let result = try run(Self.ninep, ["cat", "/hello.txt", "--server", "127.0.0.1:\(listener.port)", "--timeout", "10"], timeout: .seconds(30))
        #expect(result.status == 0 && result.output == "activated\n", "cat through the inherited socket: \(result.status) \(result.output)")

        kill(child.pid, SIGTERM)
        let stopping = notify.receive(within: .seconds(10))
        #expect(stopping?.contains("STOPPING=1") == true, "STOPPING=1 on SIGTERM: \(stopping ?? "nothing")")
        #expect(child.wait(timeout: .seconds(10)) && child.status == 0, "ninepd exits 0 after SIGTERM; log: \(logText())")
        // The socket belongs to the supervisor: ninepd stopped accepting without shutting it
        // down, so systemd could start it again on the next connection.
        #expect(listener.isStillListening, "the inherited socket still listens after ninepd stopped")
    }

    @Test func readyComesOnlyOnceTheListenerAccepts() throws {
        let root = try Paths.temporaryDirectory("ninepd-notify")
        defer { try? FileManager.default.removeItem(at: root) }
        let port = try freeLoopbackPort()
        // An abstract socket name ('@'), as systemd uses in containers.
        let notify = try NotifySocket(path: "@ninepd-test-\(getpid())-\(port)")
        let log = root.appendingPathComponent("ninepd.log")
        let child = try Spawned(
            "/bin/sh", ["-c", "NOTIFY_SOCKET=\"$0\" exec \"$@\"", notify.path, Paths.ninepd.path, "--export", root.path,
                        "--listen", "tcp:127.0.0.1:\(port)", "--memory-budget", "16M"],
            output: log.path)
        defer { child.terminate() }
        var accepting = false
        var ready: String?
        // Poll the port until READY=1 arrives; the datagram must not come before the port
        // accepts, and must come once it does.
        let deadline = ContinuousClock.now + .seconds(30)
        while ready == nil && ContinuousClock.now < deadline {
            ready = notify.receive(within: .milliseconds(5))
            if ready != nil {
                accepting = waitForListener(port: port, timeout: .zero)
            }
        }
        #expect(ready?.contains("READY=1") == true, "READY=1 on an abstract NOTIFY_SOCKET; log: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        #expect(accepting, "when READY=1 arrived the listener already accepted connections")
    }

    @Test func refusesADescriptorThatIsNotAListeningSocket() throws {
        let root = try Paths.temporaryDirectory("ninepd-badfd")
        defer { try? FileManager.default.removeItem(at: root) }
        // A bound TCP socket that never called listen(): Accept=yes hands over such sockets.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        let log = root.appendingPathComponent("ninepd.log")
        let child = try Spawned(
            "/bin/sh", ["-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"", Paths.ninepd.path, "--export", root.path, "--memory-budget", "16M"],
            output: log.path, descriptors: [(fd, 3)])
        #expect(child.wait(timeout: .seconds(30)), "ninepd stops at once")
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(child.status == 1 && text.contains("inherited descriptor 3") && text.contains("not listening"), "status \(child.status ?? -1): \(text)")
    }
}

/// A TCP socket listening on 127.0.0.1 (close-on-exec), as systemd would bind it.
final class LoopbackListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd > 3, bound, listen(fd, 16) == 0 else {
            let e = errno
            close(fd)
            throw TestFailure("cannot make a listening socket (fd \(fd), errno \(e))")
        }
        self.fd = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    var isStillListening: Bool {
        var value: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &size) == 0 && value != 0
    }

    deinit { close(fd) }
}

/// The service manager's side of sd_notify: a datagram socket at a path or an abstract name.
final class NotifySocket {
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.fd = fd
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() where i < raw.count - 1 { raw[i] = byte }
            if path.hasPrefix("@") { raw[0] = 0 }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (path.hasPrefix("@") ? 0 : 1))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw TestFailure("cannot bind the notify socket \(path): errno \(errno)") }
    }

    /// The next datagram, or nil after `limit`.
    func receive(within limit: Duration) -> String? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let (seconds, attoseconds) = limit.components
        guard poll(&poller, 1, Int32(seconds * 1000 + attoseconds / 1_000_000_000_000_000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }

    deinit {
        close(fd)
        if !path.hasPrefix("@") { unlink(path) }
    }
}
