import Glibc
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

    public init() {}
}

/// The FUSE file system over one `NinePClient`: every request from the kernel becomes 9P2000.L
/// calls. Nodes (the kernel's inodes) and handles (its open files) each hold a fid of their own.
///
/// Each request runs as a task on the client's executor (no dispatch queue hop); the reply is
/// written from there and the slot goes back to the session's pool.
public final class NinePFileSystem: FuseRequestHandler {
    let client: NinePClient
    let nodes: NodeTable
    let handles = HandleTable()
    let inFlight = InFlightRequests(capacity: 64)
    let capabilityAbsence: CapabilityAbsence
    /// Fids per calling user, when each has an attach of its own (nil: one attach for all).
    let userFids: UserFids?
    let setgidDirectories = SetgidDirectories()
    let options: NinePFileSystemOptions
    let log: @Sendable (String) -> Void

    /// `root` is a walked (unopened) fid of the attach root, owned by the file system from here.
    public init(client: NinePClient, root: RemoteFile, options: NinePFileSystemOptions, log: @escaping @Sendable (String) -> Void) {
        self.client = client
        self.nodes = NodeTable(root: root)
        self.options = options
        self.log = log
        capabilityAbsence = CapabilityAbsence(lifetime: options.attributeTimeout)
        userFids = options.identity.perUserAttach ? UserFids(capacity: options.identity.userFidCapacity) : nil
    }

    /// Nodes the kernel holds (the root included) and open handles.
    public var nodeCount: Int { nodes.count }
    public var handleCount: Int { handles.count }
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
            // The task's 9P call is flushed; the request is answered EINTR, or with its result
            // when the server completed it first (it happened: the kernel must know).
            let found = inFlight.cancel(unique)
            if options.trace { log("INTERRUPT of unique \(unique): \(found ? "cancelling its call" : "already answered")") }
        default:
            break
        }
    }

    public func serve(_ slot: FuseSlot, _ header: FuseInHeader, session: FuseSession) {
        let task = Task(executorPreference: client.executor) { [self] in
            do {
                let length = try await dispatch(slot, header, layout: session.requestLayout)
                if options.trace { log("\(header.opcode) node \(header.nodeID) unique \(header.unique): ok, \(length) bytes") }
                inFlight.finish(header.unique)
                session.reply(slot, length: length)
            } catch {
                let code = fuseErrno(error)
                if options.trace || (code == EIO && !(error is FuseFailure)) {
                    log("\(header.opcode) node \(header.nodeID) unique \(header.unique): \(String(cString: strerror(code))) (\(error))")
                }
                inFlight.finish(header.unique)
                session.replyError(slot, unique: header.unique, errno: code)
            }
        }
        // Recorded before the reader reads on, so an INTERRUPT for it always finds it.
        inFlight.insert(header.unique, task)
    }

    // MARK: Dispatch

    /// Serves one request; returns the length of the reply built in `slot.reply`.
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
            return try FuseReply.with(try await setattr(header, fields), unique: unique, into: out)
        case .readlink:
            return try await readlink(header, unique: unique, into: out)
        case .statfs:
            return try FuseReply.with(try await statfs(header.nodeID), unique: unique, into: out)
        case let .open(fields):
            return try FuseReply.with(try await open(header, flags: fields.flags, directory: false), unique: unique, into: out)
        case let .opendir(fields):
            return try FuseReply.with(try await open(header, flags: fields.flags, directory: true), unique: unique, into: out)
        case let .read(fields):
            return try await read(fields, unique: unique, into: out)
        case let .write(fields, data):
            return try FuseReply.with(try await write(fields, data), unique: unique, into: out)
        case let .readdir(fields):
            return try await readdir(fields, unique: unique, into: out)
        case let .release(fields), let .releasedir(fields):
            await release(fields.fh)
            return try FuseReply.empty(unique: unique, into: out)
        case .flush, .fsyncdir:
            // Writes go to the server as they come (no write-back cache): nothing is pending.
            return try FuseReply.empty(unique: unique, into: out)
        case let .fsync(fields):
            try await handle(fields.fh).fsync(dataOnly: fields.flags & 1 != 0)
            return try FuseReply.empty(unique: unique, into: out)
        case let .create(fields, name):
            let (entry, opened) = try await create(header, fields, name)
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
            try await node(header.nodeID, for: header).unlink(name, directory: false)
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
            return try FuseReply.with(try await getlk(fields), unique: unique, into: out)
        case let .setlk(fields):
            try await setlk(fields, wait: false)
            return try FuseReply.empty(unique: unique, into: out)
        case let .setlkw(fields):
            try await setlk(fields, wait: true)
            return try FuseReply.empty(unique: unique, into: out)
        case .fallocate, .readdirplus:
            // 9P2000.L has no fallocate: ENOSYS makes the kernel answer EOPNOTSUPP from now on.
            // READDIRPLUS is not negotiated in INIT, so it should not come at all.
            throw FuseFailure(ENOSYS)
        case .`init`, .destroy, .forget, .batchForget, .interrupt:
            // Served by the session or inline; never handed here.
            throw FuseFailure(EIO)
        case .unsupported:
            throw FuseFailure(ENOSYS)
        }
    }

    // MARK: Helpers

    func node(_ nodeID: UInt64) throws(FuseFailure) -> RemoteFile {
        guard let file = nodes.file(nodeID) else { throw FuseFailure(ESTALE) }
        return file
    }

    func handle(_ fh: UInt64) throws(FuseFailure) -> RemoteFile {
        guard let file = handles.file(fh) else { throw FuseFailure(EBADF) }
        return file
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
        var entry = FuseEntryOut()
        entry.nodeID = nodes.remember(file)
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
