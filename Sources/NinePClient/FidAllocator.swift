import NinePWire

/// Fid numbers of one connection. Fid 0 is the attach fid (the root). A number is given back
/// only when the server has forgotten the fid (after Rclunk or Rremove, or when a walk that
/// would have made it failed or was flushed).
struct FidAllocator {
    static let root: UInt32 = 0
    private var next: UInt32 = 1
    private var free: [UInt32] = []

    init() { free.reserveCapacity(256) }

    mutating func allocate() -> UInt32 {
        if let fid = free.popLast() { return fid }
        let fid = next
        next += 1
        if next == NineP.noFid { next = 1 }
        return fid
    }

    mutating func release(_ fid: UInt32) {
        guard fid != FidAllocator.root else { return }
        free.append(fid)
    }
}
