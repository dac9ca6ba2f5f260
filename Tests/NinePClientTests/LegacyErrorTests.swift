import Glibc
import NinePClient
import NinePTestSupport
import NinePTransport
import NinePWire
import Testing

/// Servers that speak 9P2000.u (and some that answer 9P2000.L clients with it) report a
/// failure as Rerror: a message and an errno. The client reports it as the server's error,
/// with both, not as a broken protocol.
@Suite struct LegacyErrorTests {
    @Test func rerrorIsTheServersErrorWithItsMessageAndErrno() async throws {
        let server = try FakeServer { server, message in
            switch message.type {
            case .twalk where message.names == 1: server.rerror(tag: message.tag, "no such file here", errno: UInt32(ENOENT))
            case .tgetattr: server.rerror(tag: message.tag, "", errno: 0)
            default: server.answerNormally(message)
            }
        }
        defer { server.stop() }
        let client = try await server.connect(msize: 65536)
        defer { client.close() }

        do {
            _ = try await client.walk("/missing")
            Issue.record("the walk succeeded")
        } catch let error as NinePError {
            #expect(error.kind == .server)
            #expect(error.errno == ENOENT)
            #expect(error.reason == "no such file here")
            #expect(error.description == "walk /missing: no such file here")
        }
        // No errno at all (0): still the server's failure, as EIO, in the C library's words.
        do {
            _ = try await client.stat("/")
            Issue.record("the stat succeeded")
        } catch let error as NinePError {
            #expect(error.kind == .server)
            #expect(error.errno == EIO)
            #expect(error.reason == String(cString: strerror(EIO)))
        }
        // The connection goes on.
        _ = try await client.walk("/a/b")
    }
}
