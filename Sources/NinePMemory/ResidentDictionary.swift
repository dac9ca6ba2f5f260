extension Dictionary {
    /// Reserves room for `capacity` entries and makes that room resident now: `reserveCapacity`
    /// only maps the storage, and its pages would be faulted in one by one as entries land in
    /// them, each fault a page allocation on the request path that a full memory cgroup answers
    /// with reclaim or the OOM killer. Filling the table with `capacity` distinct keys and
    /// emptying it again (keeping the storage) touches every page once, at start.
    ///
    /// The dictionary must be empty; `key` gives distinct keys for 0..<capacity.
    public mutating func reserveResident(_ capacity: Int, key: (Int) -> Key, value: Value) {
        precondition(isEmpty, "reserveResident on a dictionary that holds entries")
        reserveCapacity(capacity)
        for i in 0..<capacity { self[key(i)] = value }
        removeAll(keepingCapacity: true)
    }
}

extension Dictionary where Key: FixedWidthInteger {
    /// `reserveResident(_:key:value:)` with the integers 0..<capacity as keys.
    public mutating func reserveResident(_ capacity: Int, value: Value) {
        reserveResident(capacity, key: { Key(truncatingIfNeeded: $0) }, value: value)
    }
}
