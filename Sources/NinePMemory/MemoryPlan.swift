/// How one memory budget is spent: the buffer pools by size class, the parking reserve, and
/// the table of connection slots (request contexts, fid slots, flush reserve) allocated at
/// start-up. Derived once; printed at start-up so an operator sees what the budget buys.
public struct MemoryPlan: Sendable, Equatable {
    /// A small buffer: an 8 KiB message plus 4 KiB so a Twrite/Rread payload can sit aligned.
    public static let smallMessageCapacity = 8192
    public static let alignmentSlack = 4096
    public static let smallBufferBytes = smallMessageCapacity + alignmentSlack
    /// Small buffers each connection may keep while its requests wait on the outside world
    /// (a FIFO, a socket) without counting against the shared pool.
    public static let defaultParkingPerConnection = 4

    public var budget: Int
    public var largeBufferBytes: Int
    public var largeBuffers: Int
    /// Small buffers in all, the parking reserve included.
    public var smallBuffers: Int
    public var parkingPerConnection: Int
    public var connectionSlots: Int
    public var connectionSlotBytes: Int
    /// The most buffers of each class one connection may hold (its share): a client that
    /// stops reading its replies holds this much and is then no longer read.
    public var largePerConnection: Int
    public var smallPerConnection: Int
    /// Connections that may be open at once (the table's slots and those beyond it): each is
    /// due a first buffer of each class, kept free for it while it has none.
    public var maxConnections: Int

    /// A plan given piece by piece (tests; `derive` is how the server makes one).
    public init(
        budget: Int, largeBufferBytes: Int, largeBuffers: Int, smallBuffers: Int,
        parkingPerConnection: Int, connectionSlots: Int, connectionSlotBytes: Int,
        largePerConnection: Int? = nil, smallPerConnection: Int? = nil, maxConnections: Int? = nil
    ) {
        self.budget = budget
        self.largeBufferBytes = largeBufferBytes
        self.largeBuffers = largeBuffers
        self.smallBuffers = smallBuffers
        self.parkingPerConnection = parkingPerConnection
        self.connectionSlots = connectionSlots
        self.connectionSlotBytes = connectionSlotBytes
        self.maxConnections = maxConnections ?? connectionSlots
        let sharedSmall = smallBuffers - connectionSlots * parkingPerConnection
        self.largePerConnection = largePerConnection ?? Self.share(of: largeBuffers, least: 2)
        self.smallPerConnection = smallPerConnection ?? Self.share(of: sharedSmall, least: 8)
    }

    /// A connection's share of a pool: a quarter of it, at least `least` (but never more than
    /// the pool), so that a few clients that stop reading leave most of it to the others.
    static func share(of pool: Int, least: Int) -> Int {
        min(max(pool, 1), max(least, pool / 4))
    }

    /// Small buffers outside the parking reserve.
    public var sharedSmallBuffers: Int { smallBuffers - parkingReserve }

    public var parkingReserve: Int { connectionSlots * parkingPerConnection }
    public var largeBytes: Int { largeBuffers * largeBufferBytes }
    public var smallBytes: Int { smallBuffers * Self.smallBufferBytes }
    public var tableBytes: Int { connectionSlots * connectionSlotBytes }
    public var totalBytes: Int { largeBytes + smallBytes + tableBytes }

    public struct Inputs: Sendable {
        /// nil: derive a budget from the other inputs.
        public var budget: Int?
        public var messageSize: Int
        public var workers: Int
        public var maxConnections: Int
        /// Bytes one preallocated connection slot costs (contexts, fid slots, scratch).
        public var connectionSlotBytes: Int
        /// Forces the number of large buffers (tests); nil: derived.
        public var largeBuffers: Int?

        public init(budget: Int?, messageSize: Int, workers: Int, maxConnections: Int, connectionSlotBytes: Int, largeBuffers: Int? = nil) {
            self.budget = budget
            self.messageSize = messageSize
            self.workers = workers
            self.maxConnections = maxConnections
            self.connectionSlotBytes = connectionSlotBytes
            self.largeBuffers = largeBuffers
        }
    }

    public struct PlanError: Error, CustomStringConvertible {
        public let description: String
    }

    static func roundUp(_ value: Int, to unit: Int) -> Int { (value + unit - 1) / unit * unit }

    /// Smallest working set: one small request (receive + reply) twice over, so a second
    /// connection is never starved by the first.
    static let minimumSharedSmallBuffers = 4

    public static func derive(_ inputs: Inputs) throws(PlanError) -> MemoryPlan {
        let largeBytes = roundUp(inputs.messageSize + alignmentSlack, to: 4096)
        let parking = defaultParkingPerConnection
        let slotCost = inputs.connectionSlotBytes + parking * smallBufferBytes
        guard let budget = inputs.budget else {
            let slots = inputs.maxConnections
            let large = inputs.largeBuffers ?? max(8, 2 * inputs.workers)
            // Each connection's due (two small buffers, see MemoryArena) on top of the shared
            // working set: without it, one connection with 16 small requests in flight had to
            // leave the other 63 connections' due free and waited (getattr x16: -16%).
            let small = max(64, 8 * inputs.workers) + slots * (parking + MemoryWaiter.dueSmall)
            var plan = MemoryPlan(
                budget: 0, largeBufferBytes: largeBytes, largeBuffers: large, smallBuffers: small,
                parkingPerConnection: parking, connectionSlots: slots, connectionSlotBytes: inputs.connectionSlotBytes,
                maxConnections: inputs.maxConnections)
            plan.budget = plan.totalBytes
            return plan
        }
        let minimum = slotCost + largeBytes + minimumSharedSmallBuffers * smallBufferBytes
        guard budget >= minimum else {
            throw PlanError(description: "memory budget \(MemoryPlan.format(bytes: budget)) is below the minimum of \(MemoryPlan.format(bytes: minimum)) for msize \(inputs.messageSize) (one large buffer, \(minimumSharedSmallBuffers) small ones, one connection slot); raise --memory-budget or lower --msize")
        }
        // The connection table takes at most a quarter of the budget; connections beyond it
        // are allocated when they come (and refused if memory is short then).
        var slots = max(1, inputs.maxConnections)
        while slots > 1 && slots * slotCost > budget / 4 { slots = (slots + 1) / 2 }
        let rest = budget - slots * slotCost
        var large = inputs.largeBuffers ?? max(1, rest * 3 / 4 / largeBytes)
        while large > 1 && rest - large * largeBytes < minimumSharedSmallBuffers * smallBufferBytes { large -= 1 }
        let small = (rest - large * largeBytes) / smallBufferBytes + slots * parking
        guard small - slots * parking >= minimumSharedSmallBuffers else {
            throw PlanError(description: "memory budget \(MemoryPlan.format(bytes: budget)) leaves no room for small buffers after \(large) large ones; raise --memory-budget")
        }
        return MemoryPlan(
            budget: budget, largeBufferBytes: largeBytes, largeBuffers: large, smallBuffers: small,
            parkingPerConnection: parking, connectionSlots: slots, connectionSlotBytes: inputs.connectionSlotBytes,
            maxConnections: inputs.maxConnections)
    }

    /// "1.5 MiB", "512 KiB", "48 MiB": for logs and errors.
    public static func format(bytes: Int) -> String {
        let units: [(Int, String)] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (size, unit) in units where bytes >= size {
            let tenths = (bytes * 10 + size / 2) / size
            return tenths % 10 == 0 ? "\(tenths / 10) \(unit)" : "\(tenths / 10).\(tenths % 10) \(unit)"
        }
        return "\(bytes) B"
    }

    /// Parses "64M", "1G", "512k", "1048576" (binary units).
    public static func parse(bytes text: String) -> Int? {
        var digits = Substring(text.lowercased())
        var multiplier = 1
        if digits.hasSuffix("ib") { digits = digits.dropLast(2) } else if digits.hasSuffix("b") { digits = digits.dropLast() }
        switch digits.last {
        case "k": multiplier = 1 << 10
        case "m": multiplier = 1 << 20
        case "g": multiplier = 1 << 30
        default: break
        }
        if multiplier != 1 { digits = digits.dropLast() }
        guard let value = Int(digits.trimmingPrefix(while: { $0 == " " })), value > 0 else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// One line for the start-up log.
    public var summary: String {
        "memory budget \(Self.format(bytes: budget)): \(largeBuffers) large buffers of \(Self.format(bytes: largeBufferBytes)) (\(Self.format(bytes: largeBytes))), \(smallBuffers) small buffers of \(Self.format(bytes: Self.smallBufferBytes)) (\(Self.format(bytes: smallBytes)), \(parkingReserve) of them kept for requests waiting on FIFOs and sockets), \(connectionSlots) connection slots preallocated (\(Self.format(bytes: tableBytes))); each connection may hold up to \(largePerConnection) large and \(smallPerConnection) small buffers and is due 1 large and 2 small (kept for the first \(min(largeBuffers, maxConnections)) connections)"
    }
}
