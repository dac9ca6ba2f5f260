/// The fixed message buffers of one connection: one per request slot, each `capacity` bytes,
/// allocated the first time its slot is used and kept until the connection goes away, so that
/// the steady state allocates nothing. Flush slots get small buffers (Tflush and Rflush are a
/// few bytes).
///
/// This is the one place that owns client message memory, so that it can move to the memory
/// layer's pools (NinePMemory) without touching the rest of the client.
///
/// Not synchronised: every access happens under the connection's state lock, or by the one
/// thread that owns the slot at that moment (see `ClientConnectionState`).
struct MessageBuffers: ~Copyable {
    private let storage: UnsafeMutablePointer<UnsafeMutableRawBufferPointer>
    let count: Int
    let requestSlots: Int
    let capacity: Int
    static let flushCapacity = 64

    init(requestSlots: Int, flushSlots: Int, capacity: Int) {
        count = requestSlots + flushSlots
        self.requestSlots = requestSlots
        self.capacity = capacity
        storage = .allocate(capacity: count)
        storage.initialize(repeating: UnsafeMutableRawBufferPointer(start: nil, count: 0), count: count)
    }

    /// Allocates and touches every buffer now (see `ClientConfiguration.preallocateBuffers`).
    mutating func preallocateAll() {
        for slot in 0..<count {
            buffer(for: slot).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    /// Where Rread's data begins in its frame: size[4] type[1] tag[2] count[4].
    static let readDataOffset = 11

    /// The buffer of `slot`, allocated on first use. A request slot's buffer begins
    /// `readDataOffset` bytes before a page boundary, so the data of an Rread lands page-aligned:
    /// the FUSE mount hands it on to the kernel's page cache with writev, and the kernel copies
    /// page by page from the source, taking the request's lock for each source page (a
    /// misaligned source spans two pages for every page of data: twice the pieces, and
    /// unaligned copies).
    mutating func buffer(for slot: Int) -> UnsafeMutableRawBufferPointer {
        if storage[slot].baseAddress == nil {
            if slot < requestSlots {
                let page = 4096
                let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity + page, alignment: page)
                storage[slot] = UnsafeMutableRawBufferPointer(rebasing: raw[(page - Self.readDataOffset)..<(page - Self.readDataOffset + capacity)])
            } else {
                storage[slot] = .allocate(byteCount: MessageBuffers.flushCapacity, alignment: 16)
            }
        }
        return storage[slot]
    }

    /// The allocation behind the buffer of `slot` (see `buffer(for:)`).
    private func allocation(of slot: Int) -> UnsafeMutableRawPointer {
        let base = storage[slot].baseAddress!
        return slot < requestSlots ? base - (4096 - Self.readDataOffset) : base
    }

    /// How many buffers have been allocated so far (for tests of warm-up).
    var allocated: Int {
        var n = 0
        for i in 0..<count where storage[i].baseAddress != nil { n += 1 }
        return n
    }

    deinit {
        for i in 0..<count where storage[i].baseAddress != nil { allocation(of: i).deallocate() }
        storage.deallocate()
    }
}
