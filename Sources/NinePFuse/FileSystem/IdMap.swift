/// A mapping between the server's user (or group) ids and this host's, for a server whose user
/// database numbers people differently: `uidmap=SERVER:LOCAL[:COUNT]` maps the COUNT ids from
/// SERVER on the server to the COUNT ids from LOCAL here, and back. Ids outside every range are
/// the same on both sides (empty: no mapping, the default). Ranges must not overlap on either
/// side, so the mapping is one-to-one and a chown round-trips.
public struct IdMap: Sendable, Equatable {
    public struct Range: Sendable, Equatable {
        public var server: UInt32
        public var local: UInt32
        public var count: UInt32

        public init(server: UInt32, local: UInt32, count: UInt32 = 1) {
            self.server = server
            self.local = local
            self.count = count
        }
    }

    public private(set) var ranges: [Range] = []

    public init() {}

    public var isEmpty: Bool { ranges.isEmpty }

    /// Adds a range; false (and no change) when it is empty, runs past 2^32 - 1 (the "no id"
    /// value is never mapped), or overlaps a range already there on either side.
    public mutating func add(_ range: Range) -> Bool {
        guard range.count > 0,
              UInt64(range.server) + UInt64(range.count) <= UInt64(UInt32.max),
              UInt64(range.local) + UInt64(range.count) <= UInt64(UInt32.max)
        else { return false }
        for other in ranges {
            if Self.overlap(range.server, other.server, range.count, other.count) || Self.overlap(range.local, other.local, range.count, other.count) {
                return false
            }
        }
        ranges.append(range)
        return true
    }

    /// Parses `SERVER:LOCAL` or `SERVER:LOCAL:COUNT` (decimal).
    public static func parseRange(_ text: String) -> Range? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3,
              let server = UInt32(parts[0]), let local = UInt32(parts[1])
        else { return nil }
        var count: UInt32 = 1
        if parts.count == 3 {
            guard let n = UInt32(parts[2]) else { return nil }
            count = n
        }
        return Range(server: server, local: local, count: count)
    }

    /// The local id of the server's `id` (attributes the kernel is shown).
    @inline(__always)
    public func local(_ id: UInt32) -> UInt32 {
        for r in ranges where id >= r.server && id - r.server < r.count { return r.local + (id - r.server) }
        return id
    }

    /// The server's id for the local `id` (ids sent: chown, a new file's group, attach uids).
    @inline(__always)
    public func server(_ id: UInt32) -> UInt32 {
        for r in ranges where id >= r.local && id - r.local < r.count { return r.server + (id - r.local) }
        return id
    }

    private static func overlap(_ a: UInt32, _ b: UInt32, _ aCount: UInt32, _ bCount: UInt32) -> Bool {
        UInt64(a) < UInt64(b) + UInt64(bCount) && UInt64(b) < UInt64(a) + UInt64(aCount)
    }
}
