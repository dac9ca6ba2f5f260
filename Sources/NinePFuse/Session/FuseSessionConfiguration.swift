/// How the session talks to the kernel: what it asks for in INIT and how much memory it holds.
public struct FuseSessionConfiguration: Sendable {
    /// Requests served at once; each holds one slot (a request buffer of `maxWrite` plus headers
    /// and a reply buffer of `maxWrite` plus a header), allocated at start-up.
    public var slots = 8
    /// Largest WRITE (and READ) the kernel sends, in bytes; rounded down to whole pages, at most
    /// 256 pages (the kernel's limit), at least one page.
    public var maxWrite = 1 << 20
    /// FUSE_ASYNC_READ: let the kernel send readahead without waiting. Faster sequential reads,
    /// but a process reading through the page cache may then not be interruptible while the
    /// server does not answer. Off by default.
    public var asyncRead = false
    /// Small requests (all but large WRITEs and SETXATTRs) that may wait, copied into 8 KiB
    /// buffers of their own, while every slot is busy; the reader keeps reading meanwhile, so
    /// INTERRUPTs are always seen. 512 KiB at the default.
    public var heldRequests = 64
    /// Large requests (WRITEs, SETXATTRs) that may wait while every slot is busy, each copied
    /// into a buffer as large as a slot's request buffer: the reader stops reading only when
    /// every slot and all of these hold one. About 4 MiB at the default.
    public var heldLargeRequests = 4

    public init() {}

    /// `maxWrite` in whole pages within the kernel's bounds.
    public var pages: Int { max(1, min(256, maxWrite / 4096)) }
    public var effectiveMaxWrite: Int { pages * 4096 }
    /// A request buffer: the largest WRITE with its headers (40 + 40 bytes), and never below the
    /// kernel's FUSE_MIN_READ_BUFFER; one extra page of room for names and xattr requests.
    public var requestBytes: Int { max(FuseProtocol.minimumReadBuffer, effectiveMaxWrite + 4096) }
    /// A reply buffer: the largest READ or READDIR with the out header.
    public var replyBytes: Int { effectiveMaxWrite + 4096 }
}
