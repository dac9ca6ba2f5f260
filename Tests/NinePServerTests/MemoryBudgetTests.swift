import Glibc
import NinePMemory
import NinePServer
import NinePTestSupport
import NinePTransport
import NinePWire
import Synchronization
import Testing

/// The memory promise with the smallest pools: a budget that buys one msize buffer, and many
/// connections that each keep many large reads and writes in flight. Everything completes,
/// with the right bytes, because a request waits for all its buffers at once (holding none),
/// in one FIFO shared by every connection.
@Suite struct MemoryBudgetTests {
    static let msize: UInt32 = 1 << 20
    static let chunk = 64 * 1024
    /// Three regions of 16 slots: region 0 keeps generation 0; round r writes region
    /// 1 + (r + 1) % 2 and reads the region the previous round wrote (round 1 reads region 0).
    static let slotsPerRegion = 16
    static let slots = 3 * slotsPerRegion

    static func writeRegion(round: Int) -> Int { round % 2 == 1 ? 1 : 2 }
    static func readRegion(round: Int) -> Int { round == 1 ? 0 : writeRegion(round: round - 1) }

    /// The budget plan holds what it says and refuses what cannot work.
    @Test func thePlanSpendsTheBudgetAndRefusesOneTooSmall() throws {
        let inputs = MemoryPlan.Inputs(budget: 64 << 20, messageSize: 1 << 20, workers: 16, maxConnections: 64, connectionSlotBytes: 60_000)
        let plan = try MemoryPlan.derive(inputs)
        #expect(plan.totalBytes <= 64 << 20, "plan \(plan.summary) spends more than its budget")
        #expect(plan.largeBuffers >= 30 && plan.smallBuffers > plan.parkingReserve, "\(plan.summary)")
        var tiny = inputs
        tiny.budget = 1 << 20
        #expect(throws: MemoryPlan.PlanError.self) { try MemoryPlan.derive(tiny) }
        #expect(MemoryPlan.parse(bytes: "64M") == 64 << 20)
        #expect(MemoryPlan.parse(bytes: "1GiB") == 1 << 30)
        #expect(MemoryPlan.parse(bytes: "512k") == 512 << 10)
        #expect(MemoryPlan.parse(bytes: "12x") == nil)
        #expect(MemoryPlan.parse(bytes: "-5") == nil)
    }

    /// One large buffer; 32 connections each with 32 requests in flight: 16 Twrites and 16
    /// Treads of 64 KiB (all need the large buffer), with small requests mixed in, for three
    /// rounds. Every request is answered with the right bytes and no Rlerror.
    @Test(.timeLimit(.minutes(3)))
    func smallestPoolsServe32ConnectionsWith32LargeRequestsEach() throws {
        let connections = 32
        let s = try TestServer {
            $0.largeBuffers = nil
            $0.memoryBudget = 1_600_000 + 64 * 1024 * 8
            $0.maxMessageSize = Self.msize
            $0.maxConnections = connections
            $0.maxRequestsPerConnection = 40
        }
        defer { s.shutdown() }
        let plan = s.server.memoryPlan
        #expect(plan.largeBuffers == 1, "the budget should buy exactly one large buffer: \(plan.summary)")
        #expect(plan.connectionSlots < connections, "some connections should be beyond the table: \(plan.summary)")
        // Every slot starts with generation 0 on disk.
        for c in 0..<connections {
            var bytes: [UInt8] = []
            for slot in 0..<Self.slots { bytes += Self.pattern(connection: c, slot: slot, generation: 0) }
            makeFile(s("file\(c)"), bytes)
        }
        let outcome = Outcome()
        let sockets = try (0..<connections).map { _ in try s.connectedSocket() }
        for c in 0..<connections {
            let socket = sockets[c]
            DaemonThread.start(name: "mem-client-\(c)") {
                do {
                    try Self.drive(socket: socket, connection: c)
                } catch {
                    outcome.failures.withLock { $0.append("connection \(c): \(error)") }
                }
                outcome.finished.add(1, ordering: .releasing)
            }
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(150)
        while outcome.finished.load(ordering: .acquiring) < connections && clock.now < deadline { usleep(20_000) }
        #expect(outcome.finished.load(ordering: .acquiring) == connections, "only \(outcome.finished.load(ordering: .acquiring)) of \(connections) connections finished in time (deadlock?)")
        let problems = outcome.failures.withLock { $0 }
        #expect(problems.isEmpty, "\(problems.count) connections failed: \(problems.prefix(5))")
        // The disk holds the last round's writes, byte for byte.
        for c in 0..<connections {
            guard let bytes = fileBytes(s("file\(c)")) else { Issue.record("file\(c) is gone"); continue }
            for slot in 0..<Self.slots {
                // Round 3 wrote region 1, round 2 region 2; region 0 was only read.
                let generation = [0, 3, 2][slot / Self.slotsPerRegion]
                let expected = Self.pattern(connection: c, slot: slot, generation: generation)
                let matches = bytes.withUnsafeBytes { memcmp($0.baseAddress! + slot * Self.chunk, expected, Self.chunk) == 0 }
                if !matches {
                    Issue.record("file\(c) slot \(slot) does not hold generation \(generation)")
                    break
                }
            }
        }
        for line in s.server.statusReport() { print("smallest pools: \(line)") }
        // The pools really were contended: large requests waited, and every wait ended.
        let sites = s.server.memoryWaitSnapshot()
        let large = sites.filter { $0.name.hasPrefix("large") }
        #expect(large.reduce(0) { $0 + $1.waits } > 0, "no large request ever waited: the test did not contend the pool (\(sites))")
        #expect(large.reduce(0) { $0 + $1.cancels } == 0)
    }

    /// Distinct bytes per connection, slot and generation, made a word at a time (the tests
    /// run unoptimised, and a byte-wise generator would dominate the run).
    static func pattern(connection: Int, slot: Int, generation: Int) -> [UInt8] {
        let seed = (UInt64(connection) << 32 | UInt64(slot) << 8 | UInt64(generation)) &* 0x9E37_79B9_7F4A_7C15
        var bytes = [UInt8](repeating: 0, count: chunk)
        bytes.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            var state = seed
            for index in words.indices {
                state = (state ^ (state >> 29)) &* 0xBF58_476D_1CE4_E5B9 &+ UInt64(index)
                words[index] = state
            }
        }
        return bytes
    }

    /// Three rounds, each with every request sent before any reply is read (a sender thread
    /// writes while this thread reads, so neither side blocks the other).
    static func drive(socket: Int32, connection c: Int) throws {
        let client = WireClient(connectedSocket: socket, timeoutSeconds: 60)
        defer { client.close() }
        let (negotiated, _) = try client.version(msize: msize)
        guard negotiated == msize else { throw WireClientError.unexpected("msize \(negotiated)") }
        try client.attach(fid: 0)
        try client.walk(0, 1, ["file\(c)"])
        _ = try client.lopen(1, OpenFlags.readWrite)
        for round in 1...3 {
            var frames: [UInt8] = []
            var expectations: [UInt16: Int] = [:]  // tag -> slot read (-1: a write, -2: small)
            var tag: UInt16 = 10
            for i in 0..<slotsPerRegion {
                let readSlot = readRegion(round: round) * slotsPerRegion + i
                frames += client.encoded(.read(fid: 1, offset: UInt64(readSlot * chunk), count: UInt32(chunk)), tag: tag)
                expectations[tag] = readSlot
                tag += 1
                let writeSlot = writeRegion(round: round) * slotsPerRegion + i
                let data = pattern(connection: c, slot: writeSlot, generation: round)
                frames += client.encoded(.write(fid: 1, offset: UInt64(writeSlot * chunk), data: client.view(data)), tag: tag)
                expectations[tag] = -1
                tag += 1
                if i % 4 == 0 {
                    frames += client.encoded(.getattr(fid: 1, mask: GetattrMask.basic), tag: tag)
                    expectations[tag] = -2
                    tag += 1
                }
            }
            let fd = client.fd
            let sender = Outcome()
            let toSend = frames
            DaemonThread.start(name: "mem-send-\(c)") {
                sender.finished.store(sendRaw(fd, toSend) ? 1 : 2, ordering: .releasing)
            }
            let total = expectations.count
            while !expectations.isEmpty {
                guard case let .message(m) = client.receive() else {
                    throw WireClientError.unexpected("round \(round): connection closed or timed out after \(total - expectations.count) of \(total) replies")
                }
                guard let expected = expectations.removeValue(forKey: m.tag) else {
                    throw WireClientError.unexpected("round \(round): reply for unknown or repeated tag \(m.tag)")
                }
                switch (expected, m.response) {
                case let (slot, .read(data)) where slot >= 0:
                    let generation = round == 1 ? 0 : round - 1
                    guard data.holds(pattern(connection: c, slot: slot, generation: generation)) else {
                        throw WireClientError.unexpected("round \(round): slot \(slot) read back wrong bytes (\(data.count) bytes)")
                    }
                case let (-1, .write(count)):
                    guard count == UInt32(chunk) else { throw WireClientError.unexpected("short write \(count)") }
                case (-2, .getattr):
                    break
                default:
                    throw WireClientError.unexpected("round \(round): tag \(m.tag) got \(m.response)")
                }
            }
            while sender.finished.load(ordering: .acquiring) == 0 { usleep(1000) }
            guard sender.finished.load(ordering: .acquiring) == 1 else { throw WireClientError.unexpected("round \(round): sending failed") }
        }
    }
}

/// Results shared with client threads.
final class Outcome: Sendable {
    let failures = Mutex<[String]>([])
    let finished = Atomic<Int>(0)
}
