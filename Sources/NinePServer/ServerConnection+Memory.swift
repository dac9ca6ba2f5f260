import NinePMemory

/// Requests admitted without their reply buffer (see `ServerConnection.admitReadAhead`): a Tread or
/// Treaddir whose large reply buffer is not free within the connection's share. They wait in
/// `memoryLine`, oldest first, holding nothing but their context, while the reader goes on
/// reading the connection; a Tflush aborts them like a queued request. The line's head waits
/// in the memory arena's FIFO through the connection's deferred waiter, and whoever frees the
/// buffer hands it on (`Server.dispatchDeferredGrants`): no thread blocks for them.
extension ServerConnection {
    /// Puts an admitted request (its tag in the table already) in the line.
    func waitForReplyBuffer(_ context: RequestContext<Backend>) {
        stateLock.withLock {
            context.phase = .waitingForMemory
            memoryLine.append(context)
        }
        pumpMemoryLine()
        server.dispatchDeferredGrants()
    }

    /// Starts the line's requests, oldest first, while the arena grants their buffers at once;
    /// when it does not, the deferred waiter is left waiting in its FIFO for the head's.
    func pumpMemoryLine() {
        let need = MemoryNeed(receive: .none, reply: .large)
        while true {
            let started: RequestContext<Backend>? = stateLock.withLock {
                guard !closing, !memoryLine.isEmpty,
                      let grant = server.arena.acquireDeferred(need, waiter: deferredWaiter, site: MemorySite.largeReply)
                else { return nil }
                return startHeadLocked(with: grant)
            }
            guard let started else { return }
            server.queue.enqueue(started)
        }
    }

    /// The arena served the deferred waiter: the line's head (if any is left) starts with it.
    func memoryGranted(_ grant: MemoryGrant) {
        let started: RequestContext<Backend>? = stateLock.withLock {
            guard !closing, !memoryLine.isEmpty else { return nil }
            return startHeadLocked(with: grant)
        }
        if let started {
            server.queue.enqueue(started)
        } else if let reply = grant.reply {
            server.arena.release(reply, from: memoryWaiter)
        }
    }

    /// Gives the line's head its reply buffer and makes it a queued request (state lock held).
    private func startHeadLocked(with grant: MemoryGrant) -> RequestContext<Backend>? {
        guard let head = memoryLine.removeFirst() else { return nil }
        head.reply = grant.reply
        head.phase = .queued
        return head
    }

    /// Takes an aborted request out of the line (state lock held). When the line is empty, the
    /// deferred waiter leaves the arena; a buffer it was granted meanwhile goes back.
    func leaveMemoryLineLocked(_ context: RequestContext<Backend>) {
        _ = memoryLine.remove(context)
        if memoryLine.isEmpty { withdrawDeferredWaiterLocked() }
    }

    /// The deferred waiter leaves the arena's FIFO (or granted list), giving back what it got.
    func withdrawDeferredWaiterLocked() {
        if let reply = server.arena.withdraw(deferredWaiter)?.reply {
            server.arena.release(reply, from: memoryWaiter)
        }
    }
}

extension FileServer {
    /// Hands buffers the arena granted to deferred waiters to their connections. Called,
    /// without any connection's state lock held, after whatever may have freed memory.
    func dispatchDeferredGrants() {
        while arena.hasDeferredGrants, let (waiter, grant) = arena.takeDeferredGrant() {
            // The owner of every deferred waiter is its connection (ServerConnection.init).
            let connection = unsafeDowncast(waiter.owner!, to: ServerConnection<Backend>.self)
            connection.memoryGranted(grant)
            connection.pumpMemoryLine()
        }
    }
}
