import NinePWire
import Testing
import NinePTestSupport

@testable import NinePClient

/// Tags are handed out cyclically over the whole tag space, skip tags in use, and never NOTAG.
@Suite(.serialized)
struct TagTests {
    @Test func allocatorCyclesSkipsInUseAndNotag() {
        var tags = TagAllocator(firstTag: 0xFFFC)
        let a = tags.allocate(for: 1)
        let b = tags.allocate(for: 2)
        let c = tags.allocate(for: 3)
        // 0xFFFF (NOTAG) is skipped: after 0xFFFE comes 0.
        #expect([a, b, c] == [0xFFFC, 0xFFFD, 0xFFFE])
        #expect(tags.allocate(for: 4) == 0)
        tags.free(b)
        // Not lowest-free: the freed 0xFFFD does not come back until the counter wraps.
        #expect(tags.allocate(for: 5) == 1)
        #expect(tags.slot(of: a) == 1 && tags.slot(of: b) == nil && tags.slot(of: 0) == 4)
        // Walk the whole space: every tag but the three held ones comes out once.
        var seen = Set<UInt16>()
        for _ in 0..<(65535 - 4) {
            let tag = tags.allocate(for: 9)
            seen.insert(tag)
            tags.free(tag)
        }
        #expect(!seen.contains(0xFFFF) && !seen.contains(a) && !seen.contains(c) && !seen.contains(0) && !seen.contains(1))
        #expect(seen.count == 65535 - 4 && seen.contains(b))
    }

    @Test func tagsOnTheWireAreCyclicAndSkipAReservedTag() async throws {
        try await withTaskExecutorPreference(timingExecutor) {
            // One walk is never answered (nor its flush), so its tag stays reserved across a wrap.
            let server = try FakeServer.withStuckWalks(answerFlushes: false)
            defer { server.stop() }
            let client = try await server.connect(msize: 8192, flushGrace: .milliseconds(50))
            let file = try await client.walk("/ok/file")
            let stuck = Task(executorPreference: timingExecutor) { try await client.walk("/stuck") }
            try await Task.sleep(for: .milliseconds(50))
            stuck.cancel()
            _ = try? await stuck.value
            let reserved = server.log.filter { $0.type == .twalk && $0.names == 1 || $0.type == .tflush }.map(\.tag)
            #expect(reserved.count == 2)
            // 65,600 sequential calls: the counter goes once round the whole tag space.
            for _ in 0..<65_600 { _ = try await file.stat() }
            let tags = server.log.filter { $0.type == .tgetattr }.map(\.tag)
            #expect(tags.count == 65_600)
            var steps: [String] = []
            for (previous, next) in zip(tags, tags.dropFirst()) {
                var expected = previous &+ 1
                while expected == 0xFFFF || reserved.contains(expected) { expected = expected == 0xFFFF ? 0 : expected &+ 1 }
                if next != expected { steps.append("\(previous)->\(next)") }
            }
            #expect(steps.isEmpty, "tags not handed out cyclically: \(steps.prefix(10))")
            #expect(!tags.contains(0xFFFF) && !tags.contains { reserved.contains($0) })
            let wrap = tags.firstIndex(of: 0xFFFE).map { Array(tags[max(0, $0 - 3)...min(tags.count - 1, $0 + 3)]) } ?? []
            print("tags: first \(tags.prefix(6).map(String.init).joined(separator: ",")); around the wrap \(wrap.map(String.init).joined(separator: ",")); reserved (skipped) \(reserved)")
            await file.close()
        }
    }
}
