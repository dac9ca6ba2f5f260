import NinePMemory
import Testing

/// The executors' job queue keeps first-in first-out order across its ring's overflow, and
/// gives everything back.
@Suite struct JobQueueTests {
    @Test func orderIsKeptThroughTheOverflow() {
        var queue = JobQueue<Int>(capacity: 4)
        let emptyAtStart = queue.isEmpty
        #expect(emptyAtStart && queue.pop() == nil)
        for value in 0..<10 { queue.push(value) }  // 4 in the ring, 6 past it
        var taken: [Int] = []
        for _ in 0..<3 { taken.append(queue.pop()!) }
        for value in 10..<13 { queue.push(value) }  // behind the overflowed ones
        while let value = queue.pop() { taken.append(value) }
        let emptyAtEnd = queue.isEmpty
        #expect(taken == Array(0..<13))
        #expect(emptyAtEnd)
    }

    @Test func interleavedPushesAndPopsWrapTheRing() {
        var queue = JobQueue<Int>(capacity: 3)
        var next = 0
        var expected = 0
        for round in 0..<50 {
            for _ in 0..<(round % 5) { queue.push(next); next += 1 }
            for _ in 0..<(round % 4) {
                guard let value = queue.pop() else { break }
                #expect(value == expected)
                expected += 1
            }
        }
        while let value = queue.pop() {
            #expect(value == expected)
            expected += 1
        }
        #expect(expected == next)
    }
}
