import NinePWire

/// How a waiting call is woken.
enum Wake: Sendable {
    /// The reply is in the slot's buffer, `length` bytes.
    case reply(length: Int)
    /// Rflush came and no reply: the request did not happen.
    case flushed
    /// The flush grace passed without reply or Rflush; the slot stays reserved.
    case abandoned(AbandonReason)
    case connectionLost
}

enum AbandonReason: Sendable {
    case cancelled
    case timedOut
}

/// What to undo when a request settles after its caller stopped waiting.
enum Undo: Sendable {
    case none
    /// A Twalk to `newfid` of `names` names: if it succeeded the fid exists and is clunked;
    /// otherwise the number is free again.
    case walk(newfid: UInt32, names: Int)
    /// The request worked on a fid the caller would have clunked on failure (Tlopen or
    /// Tlcreate on a fresh clone): clunk it once the request has settled.
    case clunk(fid: UInt32)
    /// A Tclunk: once answered the number is free; flushed unanswered, it is clunked again.
    case releaseFid(UInt32)
}

/// One request slot (a tag, a message buffer and the waiting caller) or one flush slot.
///
/// A slot is free again only when nobody will write to its buffer (no reply or Rflush can still
/// come: `awaitingReply` false, no flush outstanding) and nobody will read it (`callerHolds`
/// false). So a flushed request keeps its tag and buffers until Rflush, as flush(5) requires.
struct Slot {
    var inUse = false
    var tag: UInt16 = NineP.noTag
    /// The caller still runs between acquiring the slot and `finish` (it may read the buffer).
    var callerHolds = false
    /// The caller was woken with something other than the reply; undo on settlement.
    var callerGone = false
    /// A reply (or, for a flush slot, Rflush) may still arrive.
    var awaitingReply = false
    /// The whole frame is on the wire (a Tflush must not overtake it).
    var sent = false
    var continuation: UnsafeContinuation<Wake, Never>? = nil
    /// Cancelled before its frame was sent: it never will be.
    var cancelRequested = false
    var flushWanted = false
    var flushReason = AbandonReason.cancelled
    /// The flush slot carrying this request's Tflush, or -1.
    var flushSlot = -1
    var deadline: ContinuousClock.Instant? = nil
    var graceDeadline: ContinuousClock.Instant? = nil
    var undo = Undo.none
    /// For a flush slot: the request slot it flushes.
    var flushTarget = -1
    /// A following request's reply (`ClientConnection+Following`) that came in before its
    /// caller waited for it: its length, the reply itself in the slot's buffer.
    var parkedReply: Int? = nil

    mutating func reset() { self = Slot() }
}

/// A frame inside a slot buffer, handed from the state lock to whoever sends it.
///
/// `@unchecked Sendable`: the bytes belong to a slot whose tag is reserved until its reply or
/// Rflush settles, and nothing writes them between encoding and sending; the buffer itself
/// lives as long as the connection.
struct SlotFrame: @unchecked Sendable {
    let slot: Int
    let tag: UInt16
    let bytes: UnsafeRawBufferPointer
}
