@testable import NinePServer
import NinePTestSupport
import Testing

/// Workers are shared fairly: each connection has its own queue and the workers take one
/// request from each connection with work in turn. With one first-in-first-out queue for all
/// (before), a connection's single request waited behind every request queued before it.
@Suite struct WorkQueueTests {
    @Test func aSingleRequestWaitsOneTurnBehindAConnectionWith64Queued() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let busy = ServerConnection(server: s.server, preallocated: false)
        let quiet = ServerConnection(server: s.server, preallocated: false)
        let queue = WorkQueue<PosixBackend>(connections: 4)
        for index in 0..<64 { queue.enqueue(busy.contexts[index]) }
        queue.enqueue(quiet.contexts[0])
        var order: [ObjectIdentifier] = []
        for _ in 0..<65 { order.append(ObjectIdentifier(queue.dequeue()!.connection)) }
        let position = order.firstIndex(of: ObjectIdentifier(quiet)) ?? order.count
        #expect(position == 1, "the quiet connection's request came out at position \(position + 1) of 65")
        // Each connection's own requests keep their order.
        queue.enqueue(busy.contexts[0])
        queue.enqueue(busy.contexts[1])
        #expect(queue.dequeue() === busy.contexts[0] && queue.dequeue() === busy.contexts[1])
    }

    @Test func aRequestTakenOutLeavesTheOthersInOrder() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let a = ServerConnection(server: s.server, preallocated: false)
        let b = ServerConnection(server: s.server, preallocated: false)
        let queue = WorkQueue<PosixBackend>(connections: 4)
        for index in 0..<3 { queue.enqueue(a.contexts[index]) }
        queue.enqueue(b.contexts[0])
        #expect(queue.remove(a.contexts[1]))
        #expect(!queue.remove(a.contexts[1]), "a request taken out twice")
        #expect(queue.remove(b.contexts[0]))
        var order: [Int] = []
        for _ in 0..<2 { order.append(queue.dequeue()!.index) }
        #expect(order == [0, 2])
    }
}
