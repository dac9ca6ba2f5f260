import Glibc
import NinePTestSupport
import Testing

@testable import NinePClient

/// `RemoteFile.closeWithoutWaiting`: Tclunk sent from the caller's thread (or, with every slot
/// taken, by the housekeeper), settled by the reader: the server's fids go, no tag stays in
/// use, and the fid numbers come back.
@Suite struct CloseWithoutWaitingTests {
    @Test(arguments: [32, 2])
    func clunksReachTheServerAndGiveTheirNumbersBack(maxInFlight: Int) async throws {
        let server = try InProcessNinepd()
        defer { server.stop() }
        for index in 0..<20 { makeFile(server.server("f\(index)"), Array("data".utf8)) }
        let client = try await server.connect(maxInFlight: maxInFlight)
        defer { client.close() }
        // The connection and its attach hold descriptors of their own.
        let baseline = serverDescriptors(server.server).count
        var files: [RemoteFile] = []
        for index in 0..<20 { files.append(try await client.open("/f\(index)")) }
        #expect(serverDescriptors(server.server).count >= baseline + 20, "20 open fids hold no descriptors in the server")
        // All at once: with 2 request slots most go to the housekeeper's queue.
        for file in files { file.closeWithoutWaiting() }
        for file in files { file.closeWithoutWaiting() }  // twice: nothing more is sent
        let clock = ContinuousClock()
        let start = clock.now
        while (serverDescriptors(server.server).count > baseline || client.tagsInUse > 0) && clock.now - start < .seconds(5) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(serverDescriptors(server.server).count == baseline, "the server still holds descriptors of clunked fids")
        #expect(client.tagsInUse == 0)
        // The fid numbers were given back: the allocator hands out a freed one first.
        let numbers = Set(files.map(\.fid))
        let again = try await client.walk("/f0")
        #expect(numbers.contains(again.fid), "fid \(again.fid) is not one of the 20 clunked (\(numbers.sorted()))")
        #expect(try await again.stat().size == 4)
        await again.close()
    }
}
