import Foundation
import Glibc
import NinePTestSupport
import NinePWire
import Testing

/// localio against a real ninepd process (docs/LOCALIO.md): on its unix socket the extension,
/// the sealed nonce memfd, the proof and a grant whose bytes are the file's; on its TCP port
/// of the same process, plain 9P2000.L and no descriptor.
@Suite struct LocalIOTests {
    @Test func ninepdGrantsOnItsUnixSocketAndNotOnTCP() throws {
        let work = try Paths.temporaryDirectory("ninep-localio")
        defer { try? FileManager.default.removeItem(at: work) }
        let export = work.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        let content = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ ($0 >> 8)) }
        try Data(content).write(to: export.appendingPathComponent("big.dat"))
        let socket = work.appendingPathComponent("ninepd.sock").path
        let ninepd = try NinepdProcess(export: export, extraArguments: ["--listen", "unix:\(socket)"], logDirectory: work)
        defer { _ = ninepd.stop() }
        #expect(waitUntil(within: .seconds(10)) { access(socket, F_OK) == 0 }, "ninepd did not create \(socket)")

        let c = try WireClient(unixPath: socket, timeoutSeconds: 10)
        let (_, version) = try c.version(version: "\(NineP.versionLocalIO)")
        #expect(version == "\(NineP.versionLocalIO)")
        let memfd = try #require(c.descriptors.take(), "Rversion without the nonce memfd")
        defer { close(memfd) }
        let nonce = try #require(readNonceMemfd(memfd))
        guard case .localproof = try c.rpc(.localproof(nonce: LocalNonce(c.view(nonce)))) else {
            Issue.record("proof refused; log: \(ninepd.logText)")
            return
        }
        try c.attach(fid: 0, nuname: 0)
        _ = try c.walk(0, 1, ["big.dat"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        guard case let .localgrant(flags) = try c.rpc(.localgrant(fid: 1)), let fd = c.descriptors.take() else {
            Issue.record("no grant; log: \(ninepd.logText)")
            return
        }
        defer { close(fd) }
        #expect(flags & OpenFlags.accessMode == OpenFlags.readOnly)
        var bytes = [UInt8](repeating: 0, count: 250_000)
        #expect(bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) } == content.count)
        #expect(Array(bytes[0..<content.count]) == content)
        errno = 0
        #expect(bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, 1, 0) } == -1 && errno == EBADF)
        // The same bytes through 9P.
        #expect(try c.read(1, offset: 1000, count: 4096) == Array(content[1000..<5096]))

        // TCP on the same process: plain 9P2000.L, nothing attached, no local messages.
        let t = try WireClient(port: ninepd.port, timeoutSeconds: 10)
        let (_, tcpVersion) = try t.version(version: "\(NineP.versionLocalIO)")
        #expect(tcpVersion == "9P2000.L")
        #expect(t.descriptors.count == 0)
        #expect(errnoOf { try t.rpc(.localproof(nonce: LocalNonce(t.view(nonce)))) } == LinuxErrno.EOPNOTSUPP)
    }

    /// The administrator's trigger: SIGUSR2 makes ninepd revoke every grant, and a client's
    /// outstanding Tlocalrevoke is answered with the granted fid (and only it).
    @Test func sigusr2RevokesEveryGrantAndAnswersThePoll() throws {
        let work = try Paths.temporaryDirectory("ninep-localio-revoke")
        defer { try? FileManager.default.removeItem(at: work) }
        let export = work.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        try Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0) }).write(to: export.appendingPathComponent("a.dat"))
        let socket = work.appendingPathComponent("ninepd.sock").path
        let ninepd = try NinepdProcess(export: export, extraArguments: ["--listen", "unix:\(socket)"], logDirectory: work)
        defer { _ = ninepd.stop() }
        #expect(waitUntil(within: .seconds(10)) { access(socket, F_OK) == 0 }, "ninepd did not create \(socket)")

        guard let c = try provenSession(socket: socket) else { return }
        try c.attach(fid: 0, nuname: 0)
        _ = try c.walk(0, 1, ["a.dat"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        _ = try c.walk(0, 2, [])  // walked, never granted
        guard case .localgrant = try c.rpc(.localgrant(fid: 1)), let fd = c.descriptors.take() else {
            Issue.record("no grant; log: \(ninepd.logText)")
            return
        }
        defer { close(fd) }
        let poll = c.freshTag()
        #expect(c.send(.localrevoke, tag: poll))
        _ = try c.getattr(0)  // the poll is parked by now; other requests are served meanwhile
        #expect(kill(ninepd.child.pid, SIGUSR2) == 0)
        guard case let .localrevoke(fids) = try c.reply(tag: poll) else {
            Issue.record("not Rlocalrevoke")
            return
        }
        #expect(Array(fids) == [1])
        #expect(waitUntil(within: .seconds(5)) { ninepd.logText.contains("revoked 1 localio grant") }, "log: \(ninepd.logText)")
        // ninepd still serves the session through 9P.
        #expect(try c.read(1, offset: 0, count: 4) == [0, 1, 2, 3])
    }

    /// A SIGHUP reload of --config revokes every grant (a grant is a descriptor the old policy
    /// allowed), even when the file did not change.
    /// A localio session on `socket`: Tversion with localio, the nonce from its memfd, Tlocalproof.
    /// nil (with the issue recorded) when the proof is refused.
    private func provenSession(socket: String) throws -> WireClient? {
        let c = try WireClient(unixPath: socket, timeoutSeconds: 10)
        _ = try c.version(version: "\(NineP.versionLocalIO)")
        let memfd = try #require(c.descriptors.take(), "Rversion without the nonce memfd")
        defer { close(memfd) }
        let nonce = try #require(readNonceMemfd(memfd))
        guard case .localproof = try c.rpc(.localproof(nonce: LocalNonce(c.view(nonce)))) else {
            Issue.record("proof refused")
            return nil
        }
        return c
    }

    @Test func aConfigReloadRevokesGrants() throws {
        let work = try Paths.temporaryDirectory("ninep-localio-reload")
        defer { try? FileManager.default.removeItem(at: work) }
        let export = work.appendingPathComponent("a")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        try Data("file of a".utf8).write(to: export.appendingPathComponent("in-a"))
        let config = work.appendingPathComponent("ninepd.yaml")
        try Data("exports:\n  - name: a\n    path: \(export.path)\n".utf8).write(to: config)
        let socket = work.appendingPathComponent("ninepd.sock").path
        let ninepd = try NinepdProcess(arguments: ["--config", config.path, "--listen", "unix:\(socket)"], logDirectory: work)
        defer { _ = ninepd.stop() }
        #expect(waitUntil(within: .seconds(10)) { access(socket, F_OK) == 0 }, "ninepd did not create \(socket): \(ninepd.logText)")

        guard let c = try provenSession(socket: socket) else { return }
        try c.attach(fid: 0, aname: "a", nuname: 0)
        _ = try c.walk(0, 1, ["in-a"])
        _ = try c.lopen(1, OpenFlags.readOnly)
        guard case .localgrant = try c.rpc(.localgrant(fid: 1)), let fd = c.descriptors.take() else {
            Issue.record("no grant; log: \(ninepd.logText)")
            return
        }
        defer { close(fd) }
        let poll = c.freshTag()
        #expect(c.send(.localrevoke, tag: poll))
        _ = try c.getattr(0)
        #expect(kill(ninepd.child.pid, SIGHUP) == 0)
        guard case let .localrevoke(fids) = try c.reply(tag: poll) else {
            Issue.record("not Rlocalrevoke")
            return
        }
        #expect(Array(fids) == [1])
        #expect(try c.read(1, offset: 0, count: 100) == Array("file of a".utf8))
    }
}
