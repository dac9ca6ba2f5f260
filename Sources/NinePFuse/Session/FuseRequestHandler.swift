/// What serves the requests a `FuseSession` reads.
public protocol FuseRequestHandler: Sendable {
    /// Requests that get no reply and must never wait for a slot or the server: FORGET,
    /// BATCH_FORGET and INTERRUPT. Called on the reading thread; must return promptly.
    func handleInline(_ header: FuseInHeader, _ request: FuseRequest)

    /// Called on the reading thread when worker `worker` is about to serve the request with
    /// `header`, before any other request is read by it (an INTERRUPT of it may already be
    /// read by another worker: the handler keeps those it could not match).
    func begin(_ header: FuseInHeader, worker: Int)

    /// Serves one request read into `slot`, on worker `worker`'s task, and writes exactly one
    /// reply (`session.reply(...)` or `session.replyError(...)`) before returning.
    func serve(_ slot: FuseSlot, _ header: FuseInHeader, worker: Int, session: FuseSession) async

    /// The whole life of worker `worker`'s task: runs `body` (the loop serving its requests)
    /// inside whatever the handler binds to a worker (task-locals, warm-up).
    func runWorker(_ worker: Int, _ body: () async -> Void) async

    /// Where a worker's jobs go when its thread cannot run them (it is blocked reading).
    var fallbackExecutor: (any TaskExecutor)? { get }
}
