/// What serves the requests a `FuseSession` reads.
public protocol FuseRequestHandler: Sendable {
    /// Requests that get no reply and must never wait for a slot or the server: FORGET,
    /// BATCH_FORGET and INTERRUPT. Called on the reader thread; must return promptly.
    func handleInline(_ header: FuseInHeader, _ request: FuseRequest)

    /// Every other request. The handler owns `slot` from here on and must end with exactly one
    /// `session.reply(...)` or `session.replyError(...)`, which gives the slot back.
    func serve(_ slot: FuseSlot, _ header: FuseInHeader, session: FuseSession)
}
