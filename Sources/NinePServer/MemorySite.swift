import NinePMemory

/// The places where a request may wait for memory, by name, for the wait telemetry.
enum MemorySite {
    /// A connection's request contexts are all in flight (per-connection backpressure).
    static let requestSlot = 0
    /// A request that fits small buffers.
    static let smallRequest = 1
    /// A message too big for a small receive buffer (a large Twrite).
    static let largeReceive = 2
    /// A Tread or Treaddir whose reply needs a large buffer.
    static let largeReply = 3

    static let names = ["request-slot", "small-request", "large-receive", "large-reply"]

    static func of(_ need: MemoryNeed) -> Int {
        if need.receive == .large { return largeReceive }
        if need.reply == .large { return largeReply }
        return smallRequest
    }
}
