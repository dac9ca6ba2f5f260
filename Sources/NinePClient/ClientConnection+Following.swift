import NinePWire

/// A request sent right behind a call's own frame, without waiting for that call's reply: two
/// round trips become one where the second request does not depend on the first's answer, or
/// where its answer can be checked (Tgetattr after Tlcreate on the same fid: the qid says
/// whether the server ran it after the create).
///
/// 9P lets a server answer requests in any order, so a follower may run before the call it
/// follows: use it only where that is harmless and detectable, and only for requests with
/// nothing to undo if their caller stops waiting (the slot is freed when the reply comes).
///
/// `prepareFollowing` takes a slot (never waits: nil when none is free, and the caller goes
/// without), `call(following:)` sends it behind the call's frame, `collect` waits for and decodes
/// its reply, and `abandon` gives it up (the call failed, or the reply is not wanted). Every
/// prepared request is collected or abandoned exactly once. A caller reading the socket itself
/// (`CallerReads`) reads on until the follower's reply is in too, so collecting it needs no
/// wake-up.
struct FollowingRequest {
    let slot: Int
    let tag: UInt16
    let frame: SlotFrame
    /// The slot's whole buffer, where the reply lands.
    let buffer: UnsafeMutableRawBufferPointer
}

extension ClientConnection {
    /// A request slot taken now and `encode`d, to follow the next call; nil when every slot is
    /// in flight or the request does not fit.
    func prepareFollowing(encode: (inout WireWriter, UInt16) throws(WireError) -> Void) -> FollowingRequest? {
        let taken = state.withLock { state -> (index: Int, tag: UInt16, buffer: SlotBuffer)? in
            guard !state.followersOff, case let .slot(index) = state.acquire() else { return nil }
            return (index, state.slots[index].tag, SlotBuffer(state.buffers.buffer(for: index)))
        }
        guard let (index, tag, slotBuffer) = taken else { return nil }
        let buffer = slotBuffer.bytes!
        var writer = WireWriter(buffer)
        do {
            try encode(&writer, tag)
        } catch {
            state.withLock { $0.finish(index) }
            return nil
        }
        return FollowingRequest(slot: index, tag: tag, frame: SlotFrame(slot: index, tag: tag, bytes: writer.written), buffer: buffer)
    }

    /// Puts the follower on the wire (the call it follows has just gone); false when it was not sent.
    func launch(_ following: FollowingRequest) -> Bool {
        guard state.withLock({ $0.launchFollowing(following.slot) }) else { return false }
        wakeReaderIfWanted()
        if !send(following.frame) {
            shutdown()
            return false
        }
        return true
    }

    /// The follower's reply, decoded: at once when it is in already, else waited for as a call
    /// is (cancellable, bounded by `timeout`, flushed when cancelled). Frees the slot.
    func collect<R>(
        _ following: FollowingRequest, _ operation: NinePOperation, timeout: Duration?,
        decode: (Response) throws(NinePError) -> R
    ) async throws -> R {
        let index = following.slot
        let tag = following.tag
        let canceller = CallCanceller.current
        if Task.isCancelled || canceller?.isCancelled == true {
            abandon(following, flush: true)
            throw CancellationError()
        }
        defer { state.withLock { $0.finish(index) } }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let mayLead = callersRead && CallerReads.allowed
        let wake = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Wake, Never>) in
                switch state.withLock({ $0.awaitFollowing(index, continuation, deadline: deadline, mayLead: mayLead) }) {
                case let .ready(wake):
                    continuation.resume(returning: wake)
                case let .waiting(poke, reading):
                    if poke { pokeHousekeeper() }
                    if reading == .wakeReader { wakeReader() }
                    canceller?.attach(.call(self, slot: index, tag: tag))
                    if reading == .lead { lead(until: index) }
                }
            }
        } onCancel: {
            cancelCall(slot: index, tag: tag)
        }
        canceller?.detach()
        return try reply(wake, in: following.buffer, operation, decode: decode)
    }

    /// Records how a collected follower went: `ranFirst` when the server ran it before the call
    /// it followed (its answer was an error, or about another file). Enough of those and this
    /// connection sends no more followers (`ClientConnectionState.followersOff`).
    func noteFollowerCollected(ranFirst: Bool) {
        state.withLock { $0.noteFollowerCollected(ranFirst: ranFirst) }
    }

    /// Gives up a prepared follower, sent or not: its slot is free once nothing more can
    /// arrive in it. `flush` (when its caller was cancelled: the server may be stuck) sends
    /// Tflush for it; without, its reply is awaited (the server has just answered the call it
    /// followed, so it is coming).
    func abandon(_ following: FollowingRequest, flush: Bool = false) {
        if state.withLock({ $0.abandonFollowing(following.slot, flush: flush) }) { pokeHousekeeper() }
    }
}
