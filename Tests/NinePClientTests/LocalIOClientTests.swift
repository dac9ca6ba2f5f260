import Glibc
@testable import NinePClient
import NinePTestSupport
import NinePTransport
import NinePWire
import Testing

/// NinePClient's localio (docs/LOCALIO.md): negotiated with ninepd on a unix socket, off over
/// TCP and with diod (no error), required or not; data through grants byte-exact and visible
/// through 9P; descriptors closed with their file.
@Suite struct LocalIOClientTests {
    static func configuration(_ address: ListenAddress, _ mode: LocalIOMode, aname: String = "") -> ClientConfiguration {
        var configuration = ClientConfiguration(address: address, uname: "root", aname: aname, uid: 0, msize: 256 * 1024, callTimeout: .seconds(20))
        configuration.localIO = mode
        return configuration
    }

    static func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 131) ^ ($0 >> 9) &+ seed) }
    }

    /// The server's file as the host sees it.
    static func hostBytes(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var all: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return all }
            all += chunk[0..<n]
        }
    }

    @Test func ninepdOnAUnixSocketGrantsAndDataIsByteExact() async throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let local = try await NinePClient.connect(Self.configuration(.unix(path: "socketpair"), .required), connectedSocket: try s.connectedSocket())
        let remote = try await NinePClient.connect(Self.configuration(.unix(path: "socketpair"), .disabled), connectedSocket: try s.connectedSocket())
        #expect(local.connection.localIO)
        #expect(!remote.connection.localIO)

        // Written through the grant (a created file), read back through 9P and on the host.
        let written = Self.pattern(700_001, seed: 1)
        let file = try await local.create("/a.dat")
        #expect(file.usesLocalIO)
        try await file.write(contentsOf: written, at: 3)
        let viaNineP = try await remote.open("/a.dat")
        #expect(!viaNineP.usesLocalIO)
        #expect(try await viaNineP.read(at: 3, count: written.count + 10) == written)
        #expect(Self.hostBytes(s("a.dat")) == [0, 0, 0] + written)

        // Written through 9P, read through the grant (a file opened after the write).
        let other = Self.pattern(123_457, seed: 2)
        let writer = try await remote.create("/b.dat")
        try await writer.write(contentsOf: other, at: 0)
        let reader = try await local.open("/b.dat")
        #expect(reader.usesLocalIO)
        #expect(try await reader.read(at: 0, count: other.count + 1) == other)
        #expect(try await reader.read(at: 100_000, count: 10) == Array(other[100_000..<100_010]))

        for f in [file, viaNineP, writer, reader] { await f.close() }
    }

    @Test func aReadOnlyGrantServesReadsAndWritesStillFail() async throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let content = Self.pattern(5000, seed: 3)
        #expect(FileManagerless.write(s("r.dat"), content))
        let client = try await NinePClient.connect(Self.configuration(.unix(path: "socketpair"), .automatic), connectedSocket: try s.connectedSocket())
        let file = try await client.open("/r.dat", .read)
        #expect(file.usesLocalIO)
        let fd = try #require(file.state.withLock { $0.local?.fd })
        #expect(fcntl(fd, F_GETFL) & O_ACCMODE == O_RDONLY)
        #expect(try await file.read(at: 0, count: 6000) == content)
        // A read-only grant is not used for writing: the write goes to the server, which
        // refuses it as it refuses any write on a read-only fid.
        await #expect(throws: NinePError.self) { try await file.write(contentsOf: [1, 2, 3], at: 0) }
        #expect(Self.hostBytes(s("r.dat")) == content)
        await file.close()
    }

    @Test func closeReleasesTheGrantedDescriptor() async throws {
        let s = try TestServer()
        defer { s.shutdown() }
        #expect(FileManagerless.write(s("c.dat"), [1, 2, 3]))
        let client = try await NinePClient.connect(Self.configuration(.unix(path: "socketpair"), .automatic), connectedSocket: try s.connectedSocket())
        let file = try await client.open("/c.dat", .read)
        let fd = try #require(file.state.withLock { $0.local?.fd })
        let target = descriptorTarget(fd)
        #expect(target?.hasSuffix("/c.dat") == true)
        await file.close()
        #expect(!file.usesLocalIO)
        // The number is free again (or already another descriptor, never our file).
        #expect(descriptorTarget(fd) != target)
    }

    @Test func tcpIsPlain9PAndRequiredFails() async throws {
        let s = try TestServer(transport: .tcp)
        defer { s.shutdown() }
        let address = ListenAddress.tcp(host: "127.0.0.1", port: try #require(s.port))
        let client = try await NinePClient.connect(Self.configuration(address, .automatic))
        #expect(!client.connection.localIO)
        let file = try await client.create("/t.dat")
        #expect(!file.usesLocalIO)
        try await file.write(contentsOf: [1, 2, 3], at: 0)
        #expect(try await file.read(at: 0, count: 3) == [1, 2, 3])
        await file.close()
        do {
            _ = try await NinePClient.connect(Self.configuration(address, .required))
            Issue.record("localio .required connected over TCP")
        } catch let error as NinePError {
            #expect(error.errno == EPROTONOSUPPORT)
            #expect(error.description.contains("not a unix socket"))
        }
    }

    @Test func diodOnAUnixSocketFallsBackWithoutError() async throws {
        let export = try TempDirectory(prefix: "ninep-localio-diod")
        let work = try TempDirectory(prefix: "ninep-localio-diod-cwd")
        // diod serves one connection on a descriptor it inherits (-r/-w): a unix socket.
        func diodSocket() throws -> (Int32, Spawned) {
            let (client, server) = try makeSocketPair()
            defer { close(server) }
            let diod = try Spawned(
                "/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", work.path, "/usr/sbin/diod", "-f", "-n", "-e", export.path, "-r", "3", "-w", "3", "-L", "stderr"],
                output: work("diod.log"), descriptors: [(server, 3)])
            return (client, diod)
        }
        let (socket, diod) = try diodSocket()
        defer { diod.terminate() }
        let client = try await NinePClient.connect(Self.configuration(.unix(path: "diod"), .automatic, aname: export.path), connectedSocket: socket)
        #expect(!client.connection.localIO)
        let file = try await client.create("/d.dat")
        #expect(!file.usesLocalIO)
        let bytes = Self.pattern(10_000, seed: 4)
        try await file.write(contentsOf: bytes, at: 0)
        #expect(try await file.read(at: 0, count: 20_000) == bytes)
        await file.close()
        #expect(Self.hostBytes(export("d.dat")) == bytes)

        let (socket2, diod2) = try diodSocket()
        defer { diod2.terminate() }
        do {
            _ = try await NinePClient.connect(Self.configuration(.unix(path: "diod"), .required, aname: export.path), connectedSocket: socket2)
            Issue.record("localio .required connected to diod")
        } catch let error as NinePError {
            #expect(error.errno == EPROTONOSUPPORT)
            #expect(error.description.contains("does not offer localio"))
        }
    }

    @Test func disabledNeverOffersIt() async throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let client = try await NinePClient.connect(Self.configuration(.unix(path: "socketpair"), .disabled), connectedSocket: try s.connectedSocket())
        #expect(!client.connection.localIO)
        let file = try await client.create("/n.dat")
        #expect(!file.usesLocalIO)
        await file.close()
    }
}

/// A whole file written on the host (no Foundation).
enum FileManagerless {
    static func write(_ path: String, _ bytes: [UInt8]) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
    }
}

extension LocalIOClientTests {
    /// O_DIRECT opens get an O_DIRECT grant, and a misaligned read through it is served by the
    /// aligned split (LocalIODirectTests covers the split in depth).
    @Test func directOpensGetADirectGrant() async throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let content = Self.pattern(9000, seed: 5)
        #expect(FileManagerless.write(s("o.dat"), content))
        let client = try await NinePClient.connect(Self.configuration(.unix(path: "socketpair"), .required), connectedSocket: try s.connectedSocket())
        let direct = try await client.open("/o.dat", .read, options: .direct)
        #expect(direct.usesLocalIO)
        #expect((direct.localGrant?.flags ?? 0) & OpenFlags.direct != 0)
        // A misaligned read (offset 3, 100 bytes) is served, as through 9P.
        #expect(try await direct.read(at: 3, count: 100) == Array(content[3..<103]))
        let buffered = try await client.open("/o.dat", .read)
        #expect(buffered.usesLocalIO)
        #expect(try await buffered.read(at: 3, count: 100) == Array(content[3..<103]))
        await direct.close()
        await buffered.close()
    }
}
