import Glibc
import MetricsTestKit
import NinePMemory
import NinePTestSupport
import NinePTransport
import Synchronization
import Testing

/// The arena on its own: grants are all or nothing, waiters are served in the order they came
/// (across threads), a wait ends when the waiter is no longer wanted, the parking reserve lets
/// others through, and the figures reach swift-metrics.
@Suite struct MemoryArenaTests {
    static func arena(large: Int, small: Int, slots: Int = 1) throws -> MemoryArena {
        let plan = MemoryPlan(
            budget: 0, largeBufferBytes: 8192, largeBuffers: large, smallBuffers: small,
            parkingPerConnection: MemoryPlan.defaultParkingPerConnection, connectionSlots: slots, connectionSlotBytes: 0)
        return try MemoryArena(plan: plan, sites: ["a", "b"])
    }

    @Test func waitersAreServedInTheOrderTheyCame() throws {
        let arena = try Self.arena(large: 1, small: 8)
        let need = MemoryNeed(receive: .large, reply: .none)
        guard let held = arena.acquire(need, waiter: MemoryWaiter(), site: 0).flatMap({ $0.receive }) else {
            Issue.record("the only large buffer was not granted")
            return
        }
        let order = Order()
        let count = 5
        for index in 0..<count {
            DaemonThread.start(name: "arena-\(index)") {
                let grant = arena.acquire(need, waiter: MemoryWaiter(), site: 1)
                usleep(2000)
                // Recorded before the release: with one buffer, grants cannot overlap.
                order.served.withLock { $0.append(index) }
                if let buffer = grant?.receive { arena.release(buffer) }
            }
            // Each waiter is queued before the next one starts.
            let deadline = MemoryClock.nanoseconds() + 2_000_000_000
            while arena.waitingCount < index + 1 && MemoryClock.nanoseconds() < deadline { usleep(500) }
        }
        #expect(arena.waitingCount == count)
        arena.release(held)
        let deadline = MemoryClock.nanoseconds() + 5_000_000_000
        while order.served.withLock({ $0.count }) < count && MemoryClock.nanoseconds() < deadline { usleep(1000) }
        #expect(order.served.withLock { $0 } == Array(0..<count), "served out of order")
        usleep(10_000)  // the last waiter's release follows its record
        let site = arena.snapshot()[1]
        #expect(site.grants == UInt64(count) && site.waits == UInt64(count) && site.cancels == 0)
        #expect(arena.freeCounts().large == 1)
    }

    @Test func aGrantIsAllOrNothingAndAWaiterHoldsNothing() throws {
        let arena = try Self.arena(large: 1, small: 4 + MemoryPlan.defaultParkingPerConnection)
        // Take every shared small buffer but one: a request needing two small ones waits and
        // holds nothing, so the single free one stays free.
        var held: [UnsafeMutableRawBufferPointer] = []
        for _ in 0..<3 {
            if let b = arena.acquire(MemoryNeed(receive: .small, reply: .none), waiter: MemoryWaiter(), site: 0)?.receive { held.append(b) }
        }
        #expect(held.count == 3)
        let asked = Atomic<Int>(0)
        let granted = Order()
        DaemonThread.start(name: "arena-pair") {
            asked.store(1, ordering: .releasing)
            if let grant = arena.acquire(MemoryNeed(receive: .small, reply: .small), waiter: MemoryWaiter(), site: 1) {
                granted.served.withLock { $0.append(1) }
                arena.release(grant.receive!)
                arena.release(grant.reply!)
            }
        }
        while asked.load(ordering: .acquiring) == 0 { usleep(500) }
        usleep(20_000)
        #expect(granted.served.withLock { $0.isEmpty }, "granted two small buffers when one was free")
        #expect(arena.freeCounts().small == 1 + MemoryPlan.defaultParkingPerConnection, "the waiter holds part of its need")
        // A parked request moves its buffer into the parking reserve: that frees one for the waiter.
        #expect(arena.moveToParkingReserve())
        let deadline = MemoryClock.nanoseconds() + 2_000_000_000
        while granted.served.withLock({ $0.isEmpty }) && MemoryClock.nanoseconds() < deadline { usleep(1000) }
        #expect(granted.served.withLock { $0 } == [1], "the parking reserve did not let the waiter through")
        arena.release(held.removeLast(), returningParkingBuffer: true)
        for buffer in held { arena.release(buffer) }
        #expect(arena.freeCounts().small == 4 + MemoryPlan.defaultParkingPerConnection)
        #expect(arena.freeCounts().parking == MemoryPlan.defaultParkingPerConnection)
    }

    @Test func aWaitEndsWhenTheWaiterIsNoLongerWantedAndAtClose() throws {
        let arena = try Self.arena(large: 1, small: 8)
        let need = MemoryNeed(receive: .large, reply: .none)
        let held = arena.acquire(need, waiter: MemoryWaiter(), site: 0)?.receive
        var asks = 0
        let start = MemoryClock.nanoseconds()
        let grant = arena.acquire(need, waiter: MemoryWaiter(), site: 1, recheckMilliseconds: 10) {
            asks += 1
            return asks < 3  // the peer "hangs up" at the third look
        }
        #expect(grant == nil)
        #expect(MemoryClock.nanoseconds() - start < 2_000_000_000)
        #expect(arena.snapshot()[1].cancels == 1)
        #expect(arena.waitingCount == 0)
        arena.close()
        #expect(arena.acquire(need, waiter: MemoryWaiter(), site: 1) == nil, "a closed arena still grants or waits")
        if let held { arena.release(held) }
    }

    @Test func theFiguresReachSwiftMetrics() throws {
        let arena = try Self.arena(large: 1, small: 8)
        let metrics = TestMetrics()
        let publisher = MemoryMetrics(arena: arena, factory: metrics)
        let need = MemoryNeed(receive: .large, reply: .none)
        let held = arena.acquire(need, waiter: MemoryWaiter(), site: 0)!.receive!
        let done = Atomic<Int>(0)
        DaemonThread.start(name: "arena-metrics") {
            if let b = arena.acquire(need, waiter: MemoryWaiter(), site: 1)?.receive { arena.release(b) }
            done.store(1, ordering: .releasing)
        }
        while arena.waitingCount == 0 { usleep(500) }
        usleep(5000)
        arena.release(held)
        while done.load(ordering: .acquiring) == 0 { usleep(500) }
        publisher.publish()
        #expect(try metrics.expectCounter("ninep_memory_grants_total", [("site", "a")]).totalValue == 1)
        #expect(try metrics.expectCounter("ninep_memory_waits_total", [("site", "b")]).totalValue == 1)
        let timer = try metrics.expectTimer("ninep_memory_wait", [("site", "b")])
        #expect(timer.values.count == 1 && timer.values[0] >= 4_000_000, "wait of at least 5 ms expected: \(timer.values)")
        #expect(try metrics.expectGauge("ninep_pool_free_buffers", [("pool", "large")]).lastValue == 1)
        #expect(try metrics.expectGauge("ninep_pool_buffers", [("pool", "small")]).lastValue == 8)
        // A second publish adds only what changed.
        publisher.publish()
        #expect(try metrics.expectCounter("ninep_memory_waits_total", [("site", "b")]).totalValue == 1)
    }
}

final class Order: Sendable {
    let served = Mutex<[Int]>([])
}
