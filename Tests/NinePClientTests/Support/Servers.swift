import Glibc
@testable import NinePClient
import NinePServer
import NinePTestSupport
import NinePTransport

/// A 9P server for a test: ninepd's library in this process, or a diod process.
protocol TestPeer: AnyObject {
    var name: String { get }
    /// The directory it exports, as the test sees it.
    var exportPath: String { get }
    /// The attach name the server wants.
    var aname: String { get }
    /// Where it listens (for ninepd, only a name for errors: its clients come on socketpairs).
    var address: ListenAddress { get }
    /// A socket already connected to it, or nil to connect to `address`.
    func connectedSocket() throws -> Int32?
    func stop()
}

extension TestPeer {
    func connect(msize: UInt32 = 256 * 1024, maxInFlight: Int = 32, callTimeout: Duration? = .seconds(20)) async throws -> NinePClient {
        let configuration = ClientConfiguration(
            address: address, uname: "root", aname: aname, uid: 0, msize: msize, maxInFlight: maxInFlight, callTimeout: callTimeout)
        return try await NinePClient.connect(configuration, connectedSocket: try connectedSocket())
    }
}

/// ninepd (the NinePServer library) in this process, exporting its own scratch directory; its
/// clients are on socketpairs, and it also listens on a unix socket.
final class InProcessNinepd: TestPeer {
    let server: TestServer
    var name: String { "ninepd" }
    var exportPath: String { server.path }
    var aname: String { "" }
    var address: ListenAddress { .unix(path: "socketpair") }

    /// The unix socket it also listens on.
    var unixSocket: String { server.path + ".sock" }

    init() throws {
        server = try TestServer { $0.listen.append(.unix(path: $0.exportPath + ".sock")) }
    }

    func connectedSocket() throws -> Int32? { try server.connectedSocket() }

    func stop() {
        server.shutdown()
        unlink(unixSocket)
    }
}

/// Debian's diod on a free loopback port.
final class DiodPeer: TestPeer {
    let export: TempDirectory
    let workDirectory: TempDirectory
    let diod: DiodProcess
    var name: String { "diod" }
    var exportPath: String { export.path }
    var aname: String { export.path }
    var address: ListenAddress { .tcp(host: "127.0.0.1", port: diod.port) }

    init() throws {
        export = try TempDirectory(prefix: "ninep-client-diod")
        workDirectory = try TempDirectory(prefix: "ninep-client-diod-cwd")
        diod = try DiodProcess(export: export.path, workDirectory: workDirectory.path, log: workDirectory("diod.log"))
    }

    func connectedSocket() throws -> Int32? { nil }

    func stop() { diod.stop() }
}

/// A thread of its own for the tests that measure how fast a call returns: other suites run
/// blocking work on the shared cooperative pool (two threads on a two-core machine), which
/// would otherwise delay the test's own wake-ups, not the client's.
let timingExecutor = ClientExecutor(name: "test-timing")
