import Glibc
import NinePWire
import Synchronization

extension ClientConnection {
    /// One request/reply exchange: take a slot (and tag), encode into its buffer, send, wait
    /// for the reply and decode it while the slot is still held.
    ///
    /// Cancellation of the calling task, or the deadline passing, makes the housekeeper send
    /// Tflush; the call then waits at most the flush grace for the server to settle it: a
    /// reply is returned (the operation happened), Rflush gives CancellationError (or a
    /// timeout error). After the grace the caller gets control back regardless, and the tag
    /// stays reserved until Rflush; `undo` says what to clean up if the reply comes late.
    ///
    /// The task's `CallCanceller.current`, when there is one, cancels the call the same way.
    ///
    /// Allocation-free in the steady state: slots, tags and buffers are fixed, and the
    /// continuation lives in the task's own frame.
    func call<R>(
        _ operation: NinePOperation, undo: Undo = .none, timeout: Duration?,
        encode: (inout WireWriter, UInt16) throws(WireError) -> Void,
        decode: (Response) throws(NinePError) -> R
    ) async throws -> R {
        try await call(operation, undo: undo, timeout: timeout, keepingReply: false, encode: encode, decode: decode).result
    }

    /// `call`, and with `keepingReply` the slot stays held after a successful decode, its reply
    /// still in its buffer (what `decode` saw stays valid), until `releaseKept(slot)`: a reply
    /// can then be written on from where it arrived, without a copy (`RemoteFile.readKept`).
    ///
    /// `following`, a request prepared with `prepareFollowing`, goes on the wire right behind
    /// this call's frame (when this one went); its reply is then collected with `collect`.
    func call<R>(
        _ operation: NinePOperation, undo: Undo = .none, timeout: Duration?, keepingReply: Bool,
        following: FollowingRequest? = nil,
        encode: (inout WireWriter, UInt16) throws(WireError) -> Void,
        decode: (Response) throws(NinePError) -> R
    ) async throws -> (result: R, slot: Int) {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let canceller = CallCanceller.current
        let index = try await acquireSlot(operation, deadline: deadline, canceller: canceller)
        var kept = false
        defer { if !kept { state.withLock { $0.finish(index) } } }
        let (tag, slotBuffer) = state.withLock { state in (state.slots[index].tag, SlotBuffer(state.buffers.buffer(for: index))) }
        let buffer = slotBuffer.bytes!
        var writer = WireWriter(buffer)
        do {
            try encode(&writer, tag)
        } catch {
            state.withLock { state in
                state.slots[index].undo = undo
                state.slots[index].callerGone = true
                state.settle(index, reply: nil)
            }
            throw NinePError(.invalidArgument, errno: error == .noRoom ? ENAMETOOLONG : EINVAL, operation: operation)
        }
        state.withLock { $0.slots[index].undo = undo }
        let frame = SlotFrame(slot: index, tag: tag, bytes: writer.written)
        let mayLead = callersRead && CallerReads.allowed
        let wake = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Wake, Never>) in
                let (sent, leads) = start(frame, continuation, deadline: deadline, mayLead: mayLead)
                var follows = false
                if sent, let following { follows = launch(following) }
                canceller?.attach(.call(self, slot: index, tag: tag))
                // This thread reads the socket until its reply is in: the reply resumes this
                // task onto this thread's own queue, where it runs once this closure returns.
                if leads { lead(until: index, following: follows ? following!.slot : -1) }
            }
        } onCancel: {
            cancelCall(slot: index, tag: tag)
        }
        canceller?.detach()
        let result = try reply(wake, in: buffer, operation, decode: decode)
        kept = keepingReply
        return (result, index)
    }

    /// What a woken call returns or throws: the decoded reply, or the error its wake means.
    func reply<R>(
        _ wake: Wake, in buffer: UnsafeMutableRawBufferPointer, _ operation: NinePOperation,
        decode: (Response) throws(NinePError) -> R
    ) throws -> R {
        switch wake {
        case let .reply(length):
            let message: RMessage
            do {
                message = try RMessage.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), msize: msize)
            } catch {
                throw NinePError.protocolViolation(operation)
            }
            if let failure = NinePError.reported(by: message.response, operation) { throw failure }
            return try decode(message.response)
        case .flushed, .abandoned(.cancelled):
            throw CancellationError()
        case .abandoned(.timedOut):
            throw NinePError.timedOut(operation)
        case .connectionLost:
            throw NinePError.connectionLost(operation)
        }
    }

    /// Registers the caller and puts its frame on the wire. `sent`: the frame went (or is
    /// queued); `leads`: the caller is to read the socket itself until its reply is in (`lead`).
    private func start(_ frame: SlotFrame, _ continuation: UnsafeContinuation<Wake, Never>, deadline: ContinuousClock.Instant?, mayLead: Bool) -> (sent: Bool, leads: Bool) {
        let start = state.withLock { $0.install(frame.slot, continuation, deadline: deadline, mayLead: mayLead) }
        guard case let .send(poke, reading) = start else { return (false, false) }
        if poke { pokeHousekeeper() }
        if reading == .wakeReader { wakeReader() }
        if !send(frame) {
            shutdown()
            return (false, false)
        }
        return (true, reading == .lead)
    }

    /// A request slot; waits (FIFO) while all are in flight, at most until `deadline`.
    private func acquireSlot(_ operation: NinePOperation, deadline: ContinuousClock.Instant?, canceller: CallCanceller?) async throws -> Int {
        if Task.isCancelled || canceller?.isCancelled == true { throw CancellationError() }
        let id: UInt64
        switch state.withLock({ $0.acquire() }) {
        case let .slot(index): return index
        case .closed: throw NinePError.connectionLost(operation)
        case let .full(waiter): id = waiter
        }
        // Slow path, still allocation-free: the waiter is known by its number alone, which
        // the cancellation handler can use before or after it is queued.
        let index = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Int, Never>) in
                let poke = state.withLock { $0.enqueueWaiter(id, continuation, deadline: deadline) }
                if poke { pokeHousekeeper() }
                canceller?.attach(.waiter(self, id: id))
            }
        } onCancel: {
            state.withLock { $0.cancelWaiter(id) }
        }
        canceller?.detach()
        if Task.isCancelled || canceller?.isCancelled == true { state.withLock { $0.forgetCancelledWaiter(id) } }
        if index >= 0 { return index }
        if index == ClientConnectionState.timedOut { throw NinePError.timedOut(operation) }
        if isClosed { throw NinePError.connectionLost(operation) }
        throw CancellationError()
    }
}

extension ClientConnection {
    /// Frees a slot a `call(keepingReply: true)` kept.
    func releaseKept(_ slot: Int) {
        state.withLock { $0.finish(slot) }
    }

    /// Cancels the call holding `slot` with `tag` (Tflush through the housekeeper, or never
    /// sent); nothing when the slot has moved on to another tag.
    func cancelCall(slot: Int, tag: UInt16) {
        if state.withLock({ $0.cancel(slot, tag: tag) }) { pokeHousekeeper() }
    }

    /// Wakes the caller queued for a slot as `id` without one; nothing when it is no longer queued.
    func cancelSlotWait(_ id: UInt64) {
        state.withLock { $0.cancelWaiter(id) }
    }
}
