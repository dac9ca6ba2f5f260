import NinePWire

/// Hands out 9P tags cyclically over the whole tag space (0...0xFFFE), skipping tags still in
/// use and NOTAG (0xFFFF). Cyclic rather than lowest-free: a tag comes back only after every
/// other tag has been used, so a late or duplicated reply can hardly be taken for the answer to
/// a newer request that reuses its tag (the reason the Linux client moved to cyclic idr).
///
/// The table maps each tag to the slot that holds it; it is one fixed array of 65536 entries,
/// allocated once.
struct TagAllocator: ~Copyable {
    private let slotOfTag: UnsafeMutablePointer<UInt16>
    private var nextTag: UInt16
    private(set) var inUse = 0
    static let noSlot: UInt16 = 0xFFFF

    init(firstTag: UInt16 = 0) {
        slotOfTag = .allocate(capacity: 0x10000)
        slotOfTag.initialize(repeating: TagAllocator.noSlot, count: 0x10000)
        nextTag = firstTag == NineP.noTag ? 0 : firstTag
    }

    deinit { slotOfTag.deallocate() }

    /// The next free tag after the previous one, bound to `slot`. The caller never holds more
    /// than a few hundred tags, so the search ends after a few steps.
    mutating func allocate(for slot: Int) -> UInt16 {
        precondition(inUse < Int(NineP.noTag) && slot < Int(TagAllocator.noSlot))
        while true {
            let tag = nextTag
            nextTag = nextTag &+ 1
            if nextTag == NineP.noTag { nextTag = 0 }
            if tag != NineP.noTag && slotOfTag[Int(tag)] == TagAllocator.noSlot {
                slotOfTag[Int(tag)] = UInt16(slot)
                inUse += 1
                return tag
            }
        }
    }

    /// The slot holding `tag`, or nil when the tag is not in use.
    func slot(of tag: UInt16) -> Int? {
        let slot = slotOfTag[Int(tag)]
        return slot == TagAllocator.noSlot ? nil : Int(slot)
    }

    mutating func free(_ tag: UInt16) {
        precondition(slotOfTag[Int(tag)] != TagAllocator.noSlot, "tag \(tag) freed twice")
        slotOfTag[Int(tag)] = TagAllocator.noSlot
        inUse -= 1
    }
}
