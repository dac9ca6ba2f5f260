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
    /// FUSE_WRITEBACK_CACHE (`-o cache=writeback`): the kernel gathers writes in its page cache
    /// and sends them later, so write(2) returns before the server has the data (close, fsync
    /// and memory pressure send it). Off by default.
    public var writebackCache = false
    /// FUSE_DIRECT_IO_ALLOW_MMAP (`-o cache=none`): files opened for direct IO may still be
    /// mapped (through the page cache), as on a local file system.
    public var directIOAllowMmap = false
    /// FUSE_PASSTHROUGH (`-o passthrough`, docs/LOCALIO.md): asked for only when the mount
    /// can register backing files; never with `writebackCache` (the kernel drops it then).
    public var passthrough = false
    /// FUSE_DO_READDIRPLUS with FUSE_READDIRPLUS_AUTO (`-o readdirplus`): listings that are
    /// followed by stats of their entries (ls -l) come with each entry's attributes. Off by
    /// default: each entry costs a Twalk and a Tgetattr, which made a plain listing of 10,000
    /// names 3x slower (15 -> 45 ms) with no measured gain for ls -l (docs/FUSE.md).
    public var readdirplus = false

    public init() {}

    /// Worker threads, each with a slot of its own: one more than `slots`, so that one still
    /// reads /dev/fuse (INTERRUPTs, FORGETs) while `slots` requests are being served.
    public var workers: Int { slots + 1 }

    /// `maxWrite` in whole pages within the kernel's bounds.
    public var pages: Int { max(1, min(256, maxWrite / 4096)) }
    public var effectiveMaxWrite: Int { pages * 4096 }
    /// A request buffer: the largest WRITE with its headers (40 + 40 bytes), and never below the
    /// kernel's FUSE_MIN_READ_BUFFER; one extra page of room for names and xattr requests.
    public var requestBytes: Int { max(FuseProtocol.minimumReadBuffer, effectiveMaxWrite + 4096) }
    /// A reply buffer: the largest READ or READDIR with the out header.
    public var replyBytes: Int { effectiveMaxWrite + 4096 }
    /// Everything the session allocates and touches at start: the workers' slots and the held
    /// buffers, small and large.
    public var preallocatedBytes: Int {
        (slots + 1) * (requestBytes + replyBytes) + heldRequests * FuseSlotPool.heldRequestBytes + heldLargeRequests * requestBytes
    }
}

/// What the kernel may keep of file contents (`-o cache=`); names and attributes are governed by
/// the entry and attribute timeouts.
public enum FuseCacheMode: String, Sendable, CaseIterable {
    /// No page cache: every read and write goes to the server (FOPEN_DIRECT_IO); the timeouts
    /// default to 0, so every stat asks the server too. Mapping still works.
    case none
    /// The default: the page cache holds what was read and written through, dropped when the
    /// server's mtime or size changes (AUTO_INVAL_DATA); writes go to the server as they come.
    case attributes = "attr"
    /// As `attributes`, and writes are gathered in the page cache and sent later
    /// (FUSE_WRITEBACK_CACHE): fastest for small writes, but write(2) returns before the server
    /// has the data; close and fsync send it.
    case writeback
}
