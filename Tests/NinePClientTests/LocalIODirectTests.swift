import Glibc
@testable import NinePClient
import NinePTestSupport
import NinePWire
import Testing

/// localio on a file opened for direct IO (docs/LOCALIO.md): the grant is O_DIRECT, and
/// requests at any offset, of any length, from memory of any alignment are split into a
/// buffered head, an aligned O_DIRECT middle and a buffered tail, byte-exact both ways.
@Suite struct LocalIODirectTests {
    /// (offset, count) pairs that start, end, or both, off a 4096-byte boundary, plus aligned
    /// ones, short ones inside one block, and ones that cross the end of the file.
    static func requests(fileSize: Int) -> [(Int, Int)] {
        [(0, 4096), (0, 65536), (1, 4095), (100, 10_000), (4095, 8194), (12_345, 200_001), (8192, 12_288),
         (3, 5), (4090, 12), (fileSize - 5000, 10_000), (fileSize - 1, 1), (fileSize + 10, 100)]
    }

    @Test func misalignedDirectReadsAreByteExact() async throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let content = LocalIOClientTests.pattern(1 << 20 | 777, seed: 11)
        #expect(FileManagerless.write(s("d.dat"), content))
        let client = try await NinePClient.connect(LocalIOClientTests.configuration(.unix(path: "socketpair"), .required), connectedSocket: try s.connectedSocket())
        defer { client.close() }
        let file = try await client.open("/d.dat", .read, options: .direct)
        let grant = try #require(file.localGrant, "a direct open gets a grant")
        #expect(fcntl(grant.descriptor, F_GETFL) & 0o40000 != 0, "the grant is O_DIRECT")
        #expect(grant.bufferedDescriptor >= 0 && fcntl(grant.bufferedDescriptor, F_GETFL) & 0o40000 == 0)
        // Memory aligned to 4096, and memory one byte off (the bounce buffer's case).
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 300_000, alignment: 4096)
        defer { memory.deallocate() }
        for misalign in [0, 1] {
            for (offset, count) in Self.requests(fileSize: content.count) {
                let buffer = UnsafeMutableRawBufferPointer(rebasing: memory[misalign..<(misalign + count)])
                let n = try await file.read(into: buffer, at: UInt64(offset))
                let expected = offset < content.count ? Array(content[offset..<min(content.count, offset + count)]) : []
                #expect(n == expected.count, "read \(count) at \(offset), memory +\(misalign)")
                #expect(Array(buffer[0..<max(0, n)]) == expected, "read \(count) at \(offset), memory +\(misalign)")
            }
        }
        #expect(file.usesLocalIO)
        await file.close()
    }

    @Test func misalignedDirectWritesAreByteExact() async throws {
        let s = try TestServer()
        defer { s.shutdown() }
        var expected = LocalIOClientTests.pattern(600_000, seed: 12)
        #expect(FileManagerless.write(s("w.dat"), expected))
        let client = try await NinePClient.connect(LocalIOClientTests.configuration(.unix(path: "socketpair"), .required), connectedSocket: try s.connectedSocket())
        defer { client.close() }
        let file = try await client.open("/w.dat", .readWrite, options: .direct)
        let grant = try #require(file.localGrant)
        #expect(fcntl(grant.descriptor, F_GETFL) & 0o40000 != 0)
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 300_000, alignment: 4096)
        defer { memory.deallocate() }
        var seed = 40
        for misalign in [0, 1] {
            for (offset, count) in Self.requests(fileSize: expected.count) where count <= 200_001 {
                seed += 1
                let bytes = LocalIOClientTests.pattern(count, seed: seed)
                let buffer = UnsafeMutableRawBufferPointer(rebasing: memory[misalign..<(misalign + count)])
                bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
                let n = try await file.write(UnsafeRawBufferPointer(buffer), at: UInt64(offset))
                #expect(n == count, "write \(count) at \(offset), memory +\(misalign)")
                if offset + count > expected.count { expected += [UInt8](repeating: 0, count: offset + count - expected.count) }
                expected.replaceSubrange(offset..<(offset + count), with: bytes)
                // Read back at once through the same split: what was written, nothing else.
                #expect(try await file.read(at: UInt64(offset), count: count) == bytes)
            }
        }
        #expect(file.usesLocalIO)
        await file.close()
        #expect(LocalIOClientTests.hostBytes(s("w.dat")) == expected)
    }
}
