import Glibc
@testable import NinePClient
import NinePTestSupport
import NinePWire
import Testing

/// localio revocation through NinePClient (docs/LOCALIO.md): ninepd revokes grants while a
/// file is being read or written; the client's outstanding Tlocalrevoke brings the news, the
/// file goes on through Tread and Twrite, and every byte is where it belongs.
@Suite struct LocalIORevocationClientTests {
    static func connect(_ s: TestServer, maxInFlight: Int = 32) async throws -> NinePClient {
        var configuration = LocalIOClientTests.configuration(.unix(path: "socketpair"), .required)
        configuration.maxInFlight = maxInFlight
        return try await NinePClient.connect(configuration, connectedSocket: try s.connectedSocket())
    }


    @Test func aFileRevokedMidReadContinuesThrough9PByteExact() async throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let content = LocalIOClientTests.pattern(3 << 20 | 123, seed: 7)
        #expect(FileManagerless.write(s("big.dat"), content))
        let client = try await Self.connect(s)
        defer { client.close() }
        let file = try await client.open("/big.dat")
        let grant = try #require(file.localGrant)
        #expect(!grant.isRevoked)
        var read: [UInt8] = []
        var offset: UInt64 = 0
        var chunks = 0
        var revoked = 0
        while true {
            let bytes = try await file.read(at: offset, count: 65536)
            read += bytes
            offset += UInt64(bytes.count)
            chunks += 1
            // Mid-stream: the reads that follow race with the Rlocalrevoke's arrival.
            if chunks == 8 { revoked = s.server.revokeLocalGrants() }
            if bytes.count < 65536 { break }
        }
        #expect(revoked == 1)
        #expect(read.count == content.count)
        #expect(read == content, "byte-exact across the switch from the grant to 9P")
        #expect(await eventually(.seconds(10), every: .milliseconds(2)) { !file.usesLocalIO }, "the revocation reached the client")
        #expect(grant.isRevoked)
        // From now on 9P: still byte-exact, and a file opened later gets a new grant.
        #expect(try await file.read(at: 1_000_003, count: 70_000) == Array(content[1_000_003..<1_070_003]))
        let again = try await client.open("/big.dat")
        #expect(again.usesLocalIO)
        #expect(try await again.read(at: 5, count: 10) == Array(content[5..<15]))
        await file.close()
        await again.close()
    }

    @Test func aFileRevokedMidWriteContinuesThrough9PByteExact() async throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let content = LocalIOClientTests.pattern(2 << 20 | 77, seed: 9)
        let client = try await Self.connect(s)
        defer { client.close() }
        let file = try await client.create("/w.dat")
        #expect(file.usesLocalIO)
        var offset = 0
        var chunks = 0
        while offset < content.count {
            let end = min(offset + 65536, content.count)
            try await file.write(contentsOf: Array(content[offset..<end]), at: UInt64(offset))
            offset = end
            chunks += 1
            if chunks == 5 { #expect(s.server.revokeLocalGrants() == 1) }
        }
        #expect(await eventually(.seconds(10), every: .milliseconds(2)) { !file.usesLocalIO })
        await file.close()
        #expect(LocalIOClientTests.hostBytes(s("w.dat")) == content)
    }

    @Test func oneRequestSlotKeepsNoPollAndStillWorks() async throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let content = LocalIOClientTests.pattern(100_000, seed: 4)
        #expect(FileManagerless.write(s("one.dat"), content))
        // With one slot a poll would hold the only one: none is sent, and reads go on.
        let client = try await Self.connect(s, maxInFlight: 1)
        defer { client.close() }
        let file = try await client.open("/one.dat")
        #expect(file.usesLocalIO)
        #expect(try await file.read(at: 0, count: content.count) == content)
        #expect(s.server.connectionShares().map(\.requestsInFlight) == [0])
        await file.close()
    }
}
