import CNinePShims
import Glibc
import NinePServer
import Synchronization

/// A file tree in memory, served through `FileServer<InMemoryFileSystem>`: directories, regular
/// files, symlinks, device and FIFO nodes (which cannot be opened), hard links, xattrs,
/// open-file-description locks, rename and unlink (an unlinked file lives on while a handle is
/// open on it). Every call first consults `faults` (errors, delays, blocking on demand).
///
/// What it does not model: permissions and identity (nothing is refused for lack of rights;
/// owners are only recorded), streams (FIFOs and sockets cannot be opened: ENXIO), O_APPEND,
/// O_DIRECT (accepted, without alignment rules), descriptor limits (no eviction), quotas and
/// real space (statfs is made up; ENOSPC only by injection).
///
/// Handles are small integers from one table; `openHandles` counts them, so a test can check
/// that the server gave every one back.
public final class InMemoryFileSystem: FileSystemBackend {
    /// What a test plans for the calls to come.
    public let faults = FaultPlan()
    let state: Mutex<Tree>

    /// The device every inode is on (qid paths are the inode numbers).
    public let rootDevice: UInt64 = 0x9_0000_0009
    static let rootInode: UInt64 = 1

    /// `owner`: uid and gid of the root and of whatever is created (identity is not modelled).
    public init(owner: (uid: UInt32, gid: UInt32) = (getuid(), getgid())) {
        state = Mutex(Tree(owner: owner))
    }

    /// Handles open now (path handles and open ones).
    public var openHandles: Int { state.withLock { $0.handles.count } }

    // MARK: Building a tree (for tests, outside the protocol)

    /// Creates (or replaces the content of) a regular file at a "/"-separated `path`, making
    /// missing directories.
    public func addFile(_ path: String, contents: [UInt8] = [], mode: UInt32 = 0o644) {
        state.withLock { tree in
            let directory = tree.makeDirectories(path.split(separator: "/").dropLast().map(String.init))
            let name = Array(path.split(separator: "/").last.map(String.init)?.utf8 ?? "".utf8)
            if let existing = tree.nodes[directory]!.entry(name) {
                tree.nodes[existing]!.data = contents
            } else {
                let inode = tree.makeNode(mode: Tree.regular | mode)
                tree.nodes[inode]!.data = contents
                tree.link(inode, into: directory, name: name)
            }
        }
    }

    /// Makes a directory (and its parents) at `path`.
    public func addDirectory(_ path: String) {
        state.withLock { tree in _ = tree.makeDirectories(path.split(separator: "/").map(String.init)) }
    }

    /// The content of the regular file at `path`, or nil.
    public func contents(of path: String) -> [UInt8]? {
        state.withLock { tree in
            guard let inode = tree.resolve(path) else { return nil }
            return tree.nodes[inode]!.data
        }
    }

    /// True when something is named `path`.
    public func exists(_ path: String) -> Bool { state.withLock { $0.resolve(path) != nil } }

    // MARK: The export

    public func openRoot() throws(FileSystemError) -> Int32 {
        try faults.apply(.openRoot) { "" }
        return try state.withLock { (tree) throws(FileSystemError) -> Int32 in try tree.newHandle(Self.rootInode) }
    }

    public func isExportRoot(_ st: statx) -> Bool {
        st.stx_ino == Self.rootInode && (UInt64(st.stx_dev_major) << 32 | UInt64(st.stx_dev_minor)) == rootDevice
    }

    public func isExportName(_ name: String) -> Bool { name == "/" || name == "memory" }

    public var exportDescription: String { "an in-memory tree" }

    public var usesHostIdentity: Bool { false }

    // MARK: Handles and names

    public func duplicate(_ handle: Int32) throws(FileSystemError) -> Int32 {
        try faults.apply(.duplicate) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int32 in
            let inode = try tree.inode(of: handle)
            return try tree.newHandle(inode)
        }
    }

    public func close(_ handle: Int32) {
        state.withLock { $0.close(handle) }
    }

    public func lookup(_ directory: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError) -> Int32 {
        try faults.apply(.lookup) { String(cString: name) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int32 in
            let parent = try tree.directory(of: directory)
            guard let inode = tree.nodes[parent]!.entry(Tree.bytes(name)) else { throw FileSystemError(errno: ENOENT) }
            return try tree.newHandle(inode)
        }
    }

    public func lookupParent(_ directory: Int32) throws(FileSystemError) -> Int32 {
        try faults.apply(.lookupParent) { name(of: directory) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int32 in
            let inode = try tree.directory(of: directory)
            return try tree.newHandle(tree.nodes[inode]!.parent)
        }
    }

    public func stat(_ handle: Int32) throws(FileSystemError) -> statx {
        try faults.apply(.stat) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> statx in
            tree.attributes(try tree.inode(of: handle), device: rootDevice)
        }
    }

    public func stat(_ directory: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError) -> statx {
        try faults.apply(.statAt) { String(cString: name) }
        return try state.withLock { (tree) throws(FileSystemError) -> statx in
            let parent = try tree.directory(of: directory)
            guard let inode = tree.nodes[parent]!.entry(Tree.bytes(name)) else { throw FileSystemError(errno: ENOENT) }
            return tree.attributes(inode, device: rootDevice)
        }
    }

    public func locate(_ handle: Int32) throws(FileSystemError) -> (parent: Int32, name: String) {
        try faults.apply(.locate) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> (parent: Int32, name: String) in
            let inode = try tree.inode(of: handle)
            let node = tree.nodes[inode]!
            guard node.links > 0, inode != Self.rootInode, let name = tree.nodes[node.parent]!.name(of: inode) else {
                throw FileSystemError(errno: ENOENT)
            }
            return (try tree.newHandle(node.parent), String(decoding: name, as: UTF8.self))
        }
    }

    /// The last name of the handle's file, for fault rules that name one.
    func name(of handle: Int32) -> String? {
        state.withLock { tree in
            guard let inode = try? tree.inode(of: handle), let node = tree.nodes[inode] else { return nil }
            return tree.nodes[node.parent]?.name(of: inode).map { String(decoding: $0, as: UTF8.self) }
        }
    }
}
