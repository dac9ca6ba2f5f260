import Glibc
import Synchronization
import NinePClient
import NinePWire

/// How the mount presents the server's files to the kernel.
public struct NinePFileSystemOptions: Sendable {
    /// How long the kernel may trust a name it looked up, and a file's attributes, without asking
    /// again (the server is shared: others may change it meanwhile).
    public var entryTimeout: Duration = .seconds(1)
    public var attributeTimeout: Duration = .seconds(1)
    /// Log every request and its outcome.
    public var trace = false
    /// What the kernel may cache of file contents.
    public var cache = FuseCacheMode.attributes
    /// Whose identity requests go out as, and the uid/gid mapping (NinePFileSystem+Identity).
    public var identity = IdentityOptions()
    /// Nodes (inodes the kernel holds) and open handles at most, reserved at start. Beyond them
    /// a LOOKUP or creation answers ENFILE, an OPEN ENFILE, logged once, until the kernel
    /// forgets or releases some. Each node costs about 150 bytes (its entry and fid object)
    /// once used, each handle about 100. Their tables are reserved and resident from the start:
    /// a dictionary's storage is a power of two of places filled to 3/4 at most, so 49,152
    /// nodes take 65,536 places (about 5 MiB with the qid index) where 65,536 nodes would take
    /// 131,072 (twice that, for a third more nodes); likewise 12,288 handles.
    public var nodeCapacity = 49_152
    public var handleCapacity = 12_288
    /// Whether open files' data may bypass 9P through localio grants (PassthroughMode).
    public var passthrough = PassthroughMode.auto
    /// (file, lock owner) pairs holding POSIX locks at most (`LockOwners`), reserved at start;
    /// beyond them a new owner's lock answers ENOLCK.
    public var lockOwnerCapacity = 1 << 10
    /// READDIRPLUS entries resolved at once (Twalk and Tgetattr in flight together); 1: one
    /// after another, allocation-free (NinePFileSystem+Readdirplus).
    public var readdirplusWindow = 1
    /// Read-ahead lanes (`ReadAhead`): READs asked of the server before the kernel sends them,
    /// at most `ReadAhead.depth` ahead of one sequential reader, this many in all. Each may hold
    /// one of the client's request slots (the mount adds one per lane, an msize buffer each);
    /// 0: none. Never used with `cache=none`.
    public var readAheadLanes = 3

    public init() {}
}

/// The FUSE file system over one `NinePClient`: every request from the kernel becomes 9P2000.L
/// calls. Nodes (the kernel's inodes) and handles (its open files) each hold a fid of their own.
///
/// Serves requests on the session's workers (`FuseWorker`: each request is served, from
/// /dev/fuse to the reply, on the thread that read it). An INTERRUPT cancels the worker's calls
/// through its `CallCanceller`, bound to the worker's task for its life, never the worker.
/// Nothing is allocated per request in the steady state.
public final class NinePFileSystem: FuseRequestHandler {
    let client: NinePClient
    let nodes: NodeTable
    let handles: HandleTable
    let lockOwners: LockOwners
    let inFlight: InFlightRequests
    let xattrAbsence: XattrAbsence
    /// What each worker does after its reply (AfterReply.swift).
    let afterReply: AfterReplyWork
    /// Fids per calling user, when each has an attach of its own (nil: one attach for all).
    let userFids: UserFids?
    let setgidDirectories = SetgidDirectories()
    /// FUSE passthrough backings and the open files' data paths (NinePFileSystem+Data).
    let passthrough: PassthroughBackings
    let options: NinePFileSystemOptions
    /// Sequential READs' read-ahead (nil: none: `cache=none`, or no lanes).
    let readAhead: ReadAhead?
    /// READ replies written from 9P message buffers (read-ahead and large READs).
    let keptReplies: KeptReplies
    let log: @Sendable (String) -> Void
    /// Whether "table full" was logged already (once per table).
    private let warnedFull = Atomic<UInt8>(0)

    /// `root` is a walked (unopened) fid of the attach root, owned by the file system from here.
    /// `slots`: the session's slots (`FuseSessionConfiguration.slots`); it has one worker more.
    public init(client: NinePClient, root: RemoteFile, options: NinePFileSystemOptions, slots: Int = FuseSessionConfiguration().slots, log: @escaping @Sendable (String) -> Void) {
        self.client = client
        self.nodes = NodeTable(root: root, capacity: options.nodeCapacity)
        self.handles = HandleTable(capacity: options.handleCapacity, filler: root)
        self.passthrough = PassthroughBackings(capacity: options.handleCapacity)
        self.lockOwners = LockOwners(capacity: options.lockOwnerCapacity)
        self.inFlight = InFlightRequests(workers: slots + 1)
        self.afterReply = AfterReplyWork(workers: slots + 1)
        self.options = options
        self.log = log
        keptReplies = KeptReplies(workers: slots + 1)
        readAhead = options.readAheadLanes > 0 && options.cache != .none
            ? ReadAhead(lanes: options.readAheadLanes, keptReplies: keptReplies, client: client, maxAge: options.attributeTimeout) : nil
        xattrAbsence = XattrAbsence(lifetime: options.attributeTimeout)
        userFids = options.identity.perUserAttach ? UserFids(capacity: options.identity.userFidCapacity) : nil
    }

    /// Ends the read-ahead lanes' tasks; the workers are the session's and end with it.
    public func stop() { readAhead?.stop() }

    /// What read-ahead did so far, for the status line ("" without it).
    public var readAheadSummary: String { readAhead?.summary ?? "" }

    /// Read-ahead lanes in use (each may hold one 9P request slot: the mount's client has
    /// this many more).
    public static func readAheadLanes(_ options: NinePFileSystemOptions) -> Int {
        options.cache == .none ? 0 : options.readAheadLanes
    }

    /// Nodes the kernel holds (the root included) and open handles.
    public var nodeCount: Int { nodes.count }
    public var handleCount: Int { handles.count }
    public var lockOwnerCount: Int { lockOwners.count }
    public var requestsInFlight: Int { inFlight.count }

    // MARK: FuseRequestHandler

    public func handleInline(_ header: FuseInHeader, _ request: FuseRequest) {
        switch request {
        case let .forget(lookups):
            // The fid, if the node went, is clunked in the background when `gone` is dropped.
            let gone = nodes.forget(header.nodeID, count: lookups)
            if gone != nil { forgotten(header.nodeID) }
        case let .batchForget(list):
            for entry in list {
                let gone = nodes.forget(entry.nodeID, count: entry.lookups)
                if gone != nil { forgotten(entry.nodeID) }
            }
        case let .interrupt(unique):
            // The worker's 9P call is flushed; the request is answered EINTR, or with its result
            // when the server completed it first (it happened: the kernel must know).
            let found = inFlight.cancel(unique)
            // A READ waiting on a read-ahead waits on no call of its own.
            if found { readAhead?.interrupted() }
            if options.trace { log("INTERRUPT of unique \(unique): \(found ? "cancelling its call" : "already answered")") }
        default:
            break
        }
    }

    public func begin(_ header: FuseInHeader, worker: Int) {
        inFlight.begin(worker: worker, unique: header.unique)
        // The kernel sends RELEASE in the background and the caller's next request (an UNLINK
        // of the name just closed) may be read by another worker at once: noting the release
        // here, right after the read, keeps that UNLINK from walking the node for a handle
        // that is already closed (NodeTable: open unwalked nodes).
        if header.opcode == .release { nodes.released(header.nodeID, handle: nil) }
    }

    public var fallbackExecutor: (any TaskExecutor)? { client.executor }

    // MARK: Workers

    public func runWorker(_ worker: Int, _ body: () async -> Void) async {
        _ = await Self.growFrames(Self.frameDepth)
        // The worker's task is the only one of its thread: its 9P calls may read their own
        // replies (CallerReads), one thread wake-up less per round trip.
        await CallerReads.$allowed.withValue(true) {
            await CallCanceller.$current.withValue(inFlight.cancellers[worker]) {
                await body()
            }
        }
    }

    /// A worker's async frames come from its task's allocator, which takes memory from malloc
    /// in slabs as frames nest deeper and keeps them for reuse (Swift's StackAllocator). The
    /// kernel hands requests to whichever worker waits, so a worker may serve its first deep
    /// request (a LOOKUP) long after warm-up: a precaution, each worker grows its allocator once
    /// at start, by 128 nested frames of over 512 bytes (64 KiB), deeper than any request's.
    static let frameDepth = 128

    static func growFrames(_ depth: Int) async -> Int {
        var scratch = InlineArray<64, Int>(repeating: depth)
        let below = depth > 0 ? await growFrames(depth - 1) : 0
        scratch[depth % 64] &+= below
        return scratch[0]
    }

    public func serve(_ slot: FuseSlot, _ header: FuseInHeader, worker: Int, session: FuseSession) async {
        do {
            let length = try await dispatch(slot, header, layout: session.requestLayout)
            if options.trace { log("\(header.opcode) node \(header.nodeID) unique \(header.unique): ok, \(length) bytes") }
            inFlight.finish(worker: worker)
            let delivered = session.writeReply(slot, length: length)
            // A READ answered from a 9P message buffer: its request slot is free again.
            keptReplies.replied(slot)
            if !delivered { undoUntakenReply(slot, header) }
            await runAfterReply(slot.index)
        } catch {
            let code = fuseErrno(error)
            if options.trace || (code == EIO && !(error is FuseFailure)) {
                log("\(header.opcode) node \(header.nodeID) unique \(header.unique): \(String(cString: strerror(code))) (\(error))")
            }
            inFlight.finish(worker: worker)
            session.replyError(slot, unique: header.unique, errno: code)
            keptReplies.replied(slot)
            await runAfterReply(slot.index)
        }
    }

    /// The kernel refused a successful reply (the request was interrupted or the connection
    /// aborted: write(2) answered ENOENT): what the reply handed over would leak. An entry's
    /// lookup count goes back (the kernel will never FORGET it), and a handle an OPEN, OPENDIR
    /// or CREATE made is released (no RELEASE will come for it).
    func undoUntakenReply(_ slot: FuseSlot, _ header: FuseInHeader) {
        let reply = UnsafeRawBufferPointer(slot.reply)
        let body = FuseOutHeader.wireSize
        func u64(_ offset: Int) -> UInt64 { reply.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian }
        var nodeID: UInt64 = 0
        var handle: UInt64? = nil
        switch header.opcode {
        case .lookup, .mkdir, .mknod, .symlink, .link:
            nodeID = u64(body)
        case .create:
            nodeID = u64(body)
            handle = u64(body + FuseEntryOut.wireSize)
        case .open, .opendir:
            handle = u64(body)
        case .readdirplus:
            // Every entry with a node id counted a lookup.
            let length = Int(UInt32(littleEndian: reply.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
            let undone = undoDirentplus(reply, length: min(length, reply.count))
            if options.trace { log("READDIRPLUS unique \(header.unique): reply not taken by the kernel; \(undone) lookups undone") }
            return
        default:
            return
        }
        if nodeID != 0 {
            let gone = nodes.forget(nodeID, count: 1)
            if gone != nil { forgotten(nodeID) }
        }
        if let handle { passthrough.released(handle) }
        if let handle, let file = handles.remove(handle) {
            // On the client's shared executor: its calls must not read the socket themselves.
            Task(executorPreference: client.executor) { await CallerReads.$allowed.withValue(false) { await file.close() } }
        }
        if options.trace { log("\(header.opcode) unique \(header.unique): reply not taken by the kernel; node \(nodeID) lookup and handle \(handle.map(String.init) ?? "-") undone") }
    }

    /// Logs once per table that it is full.
    func tableFull(_ which: UInt8, _ message: @autoclosure () -> String) -> FuseFailure {
        let before = warnedFull.bitwiseOr(which, ordering: .relaxed).oldValue
        if before & which == 0 { log(message()) }
        return FuseFailure(ENFILE)
    }

    // MARK: Dispatch

    /// Serves one request; returns the length of the reply built in `slot.reply`. What it
    /// leaves for after the reply (`afterReply`, by `slot.index`: the worker's) is run by
    /// `serve` once the reply is written (`runAfterReply`).
    func dispatch(_ slot: FuseSlot, _ header: FuseInHeader, layout: FuseRequest.Layout) async throws -> Int {
        let (_, request) = try FuseRequest.decode(slot.requestBytes, layout: layout)
        let unique = header.unique
        let out = slot.reply
        switch request {
        case let .lookup(name):
            return try FuseReply.with(try await lookup(header, name), unique: unique, into: out)
        case let .getattr(fields):
            return try FuseReply.with(try await getattr(header, fields), unique: unique, into: out)
        case let .setattr(fields):
            readAhead?.invalidate(node: header.nodeID)
            defer { readAhead?.invalidate(node: header.nodeID) }
            return try FuseReply.with(try await setattr(header, fields), unique: unique, into: out)
        case .readlink:
            return try await readlink(header, unique: unique, into: out)
        case .statfs:
            return try FuseReply.with(try await statfs(header.nodeID), unique: unique, into: out)
        case let .open(fields):
            readAhead?.invalidate(node: header.nodeID)
            return try FuseReply.with(try await open(header, flags: fields.flags, directory: false), unique: unique, into: out)
        case let .opendir(fields):
            return try FuseReply.with(try await open(header, flags: fields.flags, directory: true), unique: unique, into: out)
        case let .read(fields):
            return try await read(fields, header, slot: slot)
        case let .write(fields, data):
            // Read-ahead of the node is stale before the write and again after it (a Tread
            // sent while the Twrite was out may have been served first).
            readAhead?.invalidate(node: header.nodeID)
            defer { readAhead?.invalidate(node: header.nodeID) }
            return try FuseReply.with(try await write(fields, data), unique: unique, into: out)
        case let .readdir(fields):
            return try await readdir(fields, unique: unique, into: out)
        case let .release(fields):
            readAhead?.released(fh: fields.fh)
            await releaseLocks(fields.fh)
            releaseHandle(fields.fh, node: header.nodeID, worker: slot.index)
            return try FuseReply.empty(unique: unique, into: out)
        case let .releasedir(fields):
            releaseHandle(fields.fh, node: header.nodeID, worker: slot.index)
            return try FuseReply.empty(unique: unique, into: out)
        case let .flush(fields):
            // Writes go to the server as they come (no write-back cache): nothing is pending.
            // The owner's close drops its POSIX locks on the file (the kernel sends no unlock:
            // it keeps no local record of locks the file system holds).
            await flushLocks(header, owner: fields.lockOwner)
            return try FuseReply.empty(unique: unique, into: out)
        case let .fsyncdir(fields):
            // The server makes the directory's entries durable (Tfsync of the open directory).
            try await handle(fields.fh).fsync(dataOnly: fields.flags & 1 != 0)
            return try FuseReply.empty(unique: unique, into: out)
        case let .fsync(fields):
            readAhead?.invalidate(node: header.nodeID)
            try await handle(fields.fh).fsync(dataOnly: fields.flags & 1 != 0)
            return try FuseReply.empty(unique: unique, into: out)
        case let .create(fields, name):
            let (entry, opened) = try await create(header, fields, name, worker: slot.index)
            var reply = try FuseReply(into: out, unique: unique)
            try entry.write(to: &reply.writer)
            try opened.write(to: &reply.writer)
            return reply.finish()
        case let .mkdir(fields, name):
            return try FuseReply.with(try await mkdir(header, fields, name), unique: unique, into: out)
        case let .mknod(fields, name):
            return try FuseReply.with(try await mknod(header, fields, name), unique: unique, into: out)
        case let .symlink(name, target):
            return try FuseReply.with(try await symlink(header, name, target), unique: unique, into: out)
        case let .link(oldNodeID, name):
            return try FuseReply.with(try await link(header, oldNodeID, name), unique: unique, into: out)
        case let .unlink(name):
            let directory = try await node(header.nodeID, for: header)
            await walkOpenCreated(header.nodeID, name)
            try await directory.unlink(name, directory: false)
            return try FuseReply.empty(unique: unique, into: out)
        case let .rmdir(name):
            try await node(header.nodeID, for: header).unlink(name, directory: true)
            return try FuseReply.empty(unique: unique, into: out)
        case let .rename(newParent, oldName, newName):
            try await rename(header, oldName, newParent, newName)
            return try FuseReply.empty(unique: unique, into: out)
        case let .rename2(newParent, flags, oldName, newName):
            // RENAME_NOREPLACE and RENAME_EXCHANGE cannot be done atomically over 9P2000.L:
            // refuse them rather than emulate them with a window for races.
            guard flags == 0 else { throw FuseFailure(EINVAL) }
            try await rename(header, oldName, newParent, newName)
            return try FuseReply.empty(unique: unique, into: out)
        case let .access(mask):
            // Only without default_permissions (NinePFileSystem+Identity).
            try await access(header, mask: mask)
            return try FuseReply.empty(unique: unique, into: out)
        case let .getxattr(size, name):
            return try await getxattr(header, name, size: size, unique: unique, into: out)
        case let .listxattr(size):
            return try await getxattr(header, .empty, size: size, unique: unique, into: out)
        case let .setxattr(fields, name, value):
            try await setxattr(header, name, value, flags: fields.flags)
            return try FuseReply.empty(unique: unique, into: out)
        case let .removexattr(name):
            try await removexattr(header, name)
            return try FuseReply.empty(unique: unique, into: out)
        case let .getlk(fields):
            return try FuseReply.with(try await getlk(header, fields), unique: unique, into: out)
        case let .setlk(fields):
            try await setlk(header, fields, wait: false)
            return try FuseReply.empty(unique: unique, into: out)
        case let .setlkw(fields):
            try await setlk(header, fields, wait: true)
            return try FuseReply.empty(unique: unique, into: out)
        case let .readdirplus(fields):
            return try await readdirplus(header, fields, unique: unique, into: out)
        case .fallocate:
            // 9P2000.L has no fallocate: ENOSYS makes the kernel answer EOPNOTSUPP from now on.
            throw FuseFailure(ENOSYS)
        case .`init`, .destroy, .forget, .batchForget, .interrupt:
            // Served by the session or inline; never handed here.
            throw FuseFailure(EIO)
        case .unsupported:
            throw FuseFailure(ENOSYS)
        }
    }

    // MARK: Helpers

    /// The node's fid (the mount's own attach), walked first if CREATE made the node without
    /// one (`NodeTable`): from its parent's fid by its name, and only if that still leads to
    /// the same file (qid path and type); otherwise ESTALE, never another file.
    func node(_ nodeID: UInt64) async throws -> RemoteFile {
        switch nodes.fid(nodeID) {
        case let .walked(file):
            return file
        case .missing:
            throw FuseFailure(ESTALE)
        case let .unwalked(name, qid):
            // The parent is a directory, which always has its fid: no deeper walk.
            guard let parent = nodes.file(name.parent) else { throw FuseFailure(ESTALE) }
            let walked: RemoteFile
            do {
                walked = try await parent.walk(name.name)
            } catch let error as NinePError where error.kind == .server && error.errno == ENOENT {
                throw FuseFailure(ESTALE)
            }
            withExtendedLifetime(name) {}  // `name.name` views its bytes
            guard walked.qid.path == qid.path, walked.qid.type == qid.type, let kept = nodes.resolve(nodeID, walked) else {
                await walked.close()
                throw FuseFailure(ESTALE)
            }
            if kept !== walked { await walked.close() }
            return kept
        }
    }

    /// Before an UNLINK or a RENAME over `name` in `parent`: a node CREATE made there without a
    /// fid, whose creating handle is still open, is walked now, while the name still leads to
    /// it, so that the open file stays reachable through its node (GETATTR without a handle,
    /// a lock, an xattr) after the name is gone. (Not when the handle was released: then
    /// nothing reaches the node but through a name, which a LOOKUP walks anew.)
    func walkOpenCreated(_ parent: UInt64, _ name: ByteView) async {
        guard let id = nodes.openUnwalked(parent: parent, name: name) else { return }
        _ = try? await node(id)
    }

    func handle(_ fh: UInt64) throws(FuseFailure) -> RemoteFile {
        guard let file = handles.file(fh) else { throw FuseFailure(EBADF) }
        return file
    }

    /// A handle for the opened `file`; when the table is full, the file is closed and ENFILE.
    func newHandle(_ file: RemoteFile) async throws -> UInt64 {
        guard let fh = handles.insert(file) else {
            await file.close()
            throw tableFull(2, "the handle table is full (\(handles.capacity) open files, -o max_handles): opens answer ENFILE until some are closed")
        }
        return fh
    }

    /// Stats a freshly walked fid and records the lookup: the entry to answer with.
    func entry(for file: RemoteFile) async throws -> FuseEntryOut {
        let attributes: FileAttributes
        do {
            attributes = try await file.stat()
        } catch {
            await file.close()
            throw error
        }
        return entryOut(try await remembered(file), attributes)
    }

    /// Records a lookup of `file` (a new node, or one more of the node that has its file); when
    /// the table is full, the file is closed and ENFILE.
    func remembered(_ file: RemoteFile) async throws -> UInt64 {
        guard let id = nodes.remember(file) else {
            await file.close()
            throw tableFull(1, "the node table is full (\(nodes.capacity) nodes, -o max_nodes): lookups answer ENFILE until the kernel forgets some")
        }
        return id
    }

    /// The answer to a LOOKUP of a name the server says is not there: a negative entry (node
    /// id 0) the kernel keeps for the entry timeout; nil when there is no timeout to keep it.
    func negativeEntry(for error: any Error) -> FuseEntryOut? {
        guard let error = error as? NinePError, error.kind == .server, error.errno == ENOENT, options.entryTimeout > .zero else { return nil }
        var negative = FuseEntryOut()
        (negative.entryValidSeconds, negative.entryValidNanoseconds) = split(options.entryTimeout)
        return negative
    }

    /// The entry to answer a lookup of node `id` with.
    func entryOut(_ id: UInt64, _ attributes: FileAttributes) -> FuseEntryOut {
        var entry = FuseEntryOut()
        entry.nodeID = id
        entry.attr = FuseAttr(attributes)
        (entry.entryValidSeconds, entry.entryValidNanoseconds) = split(options.entryTimeout)
        (entry.attrValidSeconds, entry.attrValidNanoseconds) = split(options.attributeTimeout)
        return entry
    }

    func attrOut(_ attributes: FileAttributes) -> FuseAttrOut {
        var out = FuseAttrOut()
        out.attr = FuseAttr(attributes)
        mapToLocal(&out.attr)
        (out.attrValidSeconds, out.attrValidNanoseconds) = split(options.attributeTimeout)
        return out
    }

    func split(_ duration: Duration) -> (UInt64, UInt32) {
        let (seconds, attoseconds) = duration.components
        return (UInt64(max(0, seconds)), UInt32(max(0, attoseconds / 1_000_000_000)))
    }
}
