import Glibc
@testable import NinePClient
import NinePTestSupport
import Testing

/// Cancellation against the real server: a read blocked on a FIFO.
@Suite(.serialized)
struct NinepdFlushTests {
    @Test func cancelledFifoReadEndsWithinOneSecondAndTheConnectionGoesOn() async throws {
        try await withTaskExecutorPreference(timingExecutor) {
            let peer = try InProcessNinepd()
            defer { peer.stop() }
            let fifo = "\(peer.exportPath)/fifo"
            #expect(mkfifo(fifo, 0o666) == 0)
            // Hold a writer open so the client's open does not wait for one; no data is written.
            let writer = open(fifo, O_RDWR | O_NONBLOCK)
            #expect(writer >= 0)
            defer { close(writer) }
            makeFile("\(peer.exportPath)/plain", Array("still here".utf8))

            let client = try await peer.connect(callTimeout: nil)
            defer { client.close() }
            let file = try await client.open("/fifo")
            let read = Task(executorPreference: timingExecutor) { try await file.read(at: 0, count: 100) }
            try await Task.sleep(for: .milliseconds(300))
            let clock = ContinuousClock()
            let cancelled = clock.now
            read.cancel()
            await #expect(throws: CancellationError.self) { _ = try await read.value }
            let latency = clock.now - cancelled
            expectPrompt(latency, under: .seconds(1), "the cancelled FIFO read returning")
            // ninepd aborts the read and answers Rflush: the tags come back.
            let deadline = ContinuousClock.now + .seconds(2)
            while client.tagsInUse > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(client.tagsInUse == 0)

            // Later calls work, the FIFO included.
            #expect(try await client.open("/plain").read(at: 0, count: 100) == Array("still here".utf8))
            _ = "more".withCString { write(writer, $0, 4) }
            #expect(try await file.read(at: 0, count: 100) == Array("more".utf8))
            await file.close()
            print("FIFO read through ninepd cancelled: CancellationError after \(latency)")
        }
    }
}
