import CNinePShims
import Glibc
import NinePServer

/// The state of an `InMemoryFileSystem`, guarded by its mutex: inodes and handles.
struct Tree {
    static let typeMask: UInt32 = 0o170000
    static let directory: UInt32 = 0o040000
    static let regular: UInt32 = 0o100000
    static let symlink: UInt32 = 0o120000

    struct Entry {
        /// Stable across removals of other entries: readdir offsets are these.
        let cookie: UInt64
        let name: [UInt8]
        let inode: UInt64
    }

    struct Lock {
        let owner: Int32
        let type: Int16
        let start: UInt64
        /// 0: to the end of the file.
        let length: UInt64

        var end: UInt64 { length == 0 ? UInt64.max : start &+ length }
        func overlaps(_ other: Lock) -> Bool { start < other.end && other.start < end }
    }

    struct Node {
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        var links: Int = 0
        /// The directory holding the node's (latest) name; a directory's ".." .
        var parent: UInt64 = 0
        var data: [UInt8] = []
        var entries: [Entry] = []
        var nextCookie: UInt64 = 3  // 1 and 2 are "." and ".."
        var xattrs: [(name: [UInt8], value: [UInt8])] = []
        var locks: [Lock] = []
        var device: UInt64 = 0
        var atime = timespec(), mtime = timespec(), ctime = timespec(), btime = timespec()
        /// Handles open on it: an unlinked node lives until the last closes.
        var handles = 0

        var isDirectory: Bool { mode & Tree.typeMask == Tree.directory }
        func entry(_ name: [UInt8]) -> UInt64? { entries.first { $0.name == name }?.inode }
        func name(of inode: UInt64) -> [UInt8]? { entries.first { $0.inode == inode }?.name }
    }

    struct Handle {
        let inode: UInt64
        /// open(2) flags of an open handle; nil for a path handle.
        var flags: Int32?
        /// A directory's readdir position (the cookie of the last entry returned).
        var position: UInt64 = 0
    }

    var nodes: [UInt64: Node] = [:]
    var handles: [Int32: Handle] = [:]
    var nextInode: UInt64 = 1
    var nextHandle: Int32 = 100
    let owner: (uid: UInt32, gid: UInt32)

    init(owner: (uid: UInt32, gid: UInt32)) {
        self.owner = owner
        let root = makeNode(mode: Tree.directory | 0o755)
        nodes[root]!.parent = root
        nodes[root]!.links = 2
    }

    static func now() -> timespec {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return t
    }

    static func bytes(_ name: UnsafePointer<CChar>) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: name, count: strlen(name)))
    }

    mutating func makeNode(mode: UInt32) -> UInt64 {
        let inode = nextInode
        nextInode += 1
        let t = Tree.now()
        nodes[inode] = Node(mode: mode, uid: owner.uid, gid: owner.gid, atime: t, mtime: t, ctime: t, btime: t)
        return inode
    }

    mutating func link(_ inode: UInt64, into directory: UInt64, name: [UInt8]) {
        let cookie = nodes[directory]!.nextCookie
        nodes[directory]!.nextCookie += 1
        nodes[directory]!.entries.append(Entry(cookie: cookie, name: name, inode: inode))
        nodes[directory]!.mtime = Tree.now()
        nodes[inode]!.links += 1
        nodes[inode]!.parent = directory
        if nodes[inode]!.isDirectory {
            nodes[inode]!.links += 1  // its "."
            nodes[directory]!.links += 1  // its ".."
        }
    }

    /// Removes `name` from `directory`; the node goes when nothing refers to it any more.
    mutating func unlink(_ name: [UInt8], from directory: UInt64) {
        guard let index = nodes[directory]!.entries.firstIndex(where: { $0.name == name }) else { return }
        let inode = nodes[directory]!.entries.remove(at: index).inode
        nodes[directory]!.mtime = Tree.now()
        nodes[inode]!.links -= 1
        if nodes[inode]!.isDirectory {
            nodes[inode]!.links = 0
            nodes[directory]!.links -= 1
        }
        collect(inode)
    }

    /// Renames an entry (the target name is free): the inode keeps its links.
    mutating func move(_ name: [UInt8], from directory: UInt64, to newDirectory: UInt64, as newName: [UInt8]) {
        guard let index = nodes[directory]!.entries.firstIndex(where: { $0.name == name }) else { return }
        let inode = nodes[directory]!.entries.remove(at: index).inode
        let cookie = nodes[newDirectory]!.nextCookie
        nodes[newDirectory]!.nextCookie += 1
        nodes[newDirectory]!.entries.append(Entry(cookie: cookie, name: newName, inode: inode))
        nodes[inode]!.parent = newDirectory
        if nodes[inode]!.isDirectory && directory != newDirectory {
            nodes[directory]!.links -= 1
            nodes[newDirectory]!.links += 1
        }
        let t = Tree.now()
        nodes[directory]!.mtime = t
        nodes[newDirectory]!.mtime = t
        nodes[inode]!.ctime = t
    }

    mutating func collect(_ inode: UInt64) {
        if let node = nodes[inode], node.links <= 0, node.handles == 0 { nodes[inode] = nil }
    }

    mutating func newHandle(_ inode: UInt64, flags: Int32? = nil) throws(FileSystemError) -> Int32 {
        guard nodes[inode] != nil else { throw FileSystemError(errno: ESTALE) }
        var handle = nextHandle
        while handles[handle] != nil { handle = handle == Int32.max ? 100 : handle + 1 }
        nextHandle = handle == Int32.max ? 100 : handle + 1
        handles[handle] = Handle(inode: inode, flags: flags)
        nodes[inode]!.handles += 1
        return handle
    }

    mutating func close(_ handle: Int32) {
        guard let h = handles.removeValue(forKey: handle) else { return }
        nodes[h.inode]!.handles -= 1
        nodes[h.inode]!.locks.removeAll { $0.owner == handle }  // OFD locks go with their handle
        collect(h.inode)
    }

    func inode(of handle: Int32) throws(FileSystemError) -> UInt64 {
        guard let h = handles[handle] else { throw FileSystemError(errno: EBADF) }
        return h.inode
    }

    func directory(of handle: Int32) throws(FileSystemError) -> UInt64 {
        let inode = try inode(of: handle)
        guard nodes[inode]!.isDirectory else { throw FileSystemError(errno: ENOTDIR) }
        guard nodes[inode]!.links > 0 else { throw FileSystemError(errno: ENOENT) }
        return inode
    }

    /// An open handle's inode, checked for the access it needs.
    func opened(_ handle: Int32, forWriting: Bool = false) throws(FileSystemError) -> UInt64 {
        guard let h = handles[handle], let flags = h.flags else { throw FileSystemError(errno: EBADF) }
        if forWriting && flags & O_ACCMODE == O_RDONLY { throw FileSystemError(errno: EBADF) }
        if !forWriting && flags & O_ACCMODE == O_WRONLY { throw FileSystemError(errno: EBADF) }
        return h.inode
    }

    func attributes(_ inode: UInt64, device: UInt64) -> statx {
        let node = nodes[inode]!
        var st = statx()
        st.stx_mask = UInt32(STATX_BASIC_STATS | STATX_BTIME)
        st.stx_ino = inode
        st.stx_dev_major = UInt32(truncatingIfNeeded: device >> 32)
        st.stx_dev_minor = UInt32(truncatingIfNeeded: device)
        st.stx_mode = UInt16(truncatingIfNeeded: node.mode)
        st.stx_uid = node.uid
        st.stx_gid = node.gid
        st.stx_nlink = UInt32(max(node.links, 0))
        st.stx_size = UInt64(node.data.count)
        st.stx_blksize = 4096
        st.stx_blocks = UInt64((node.data.count + 511) / 512)
        st.stx_rdev_major = UInt32(truncatingIfNeeded: node.device >> 8 & 0xfff)
        st.stx_rdev_minor = UInt32(truncatingIfNeeded: node.device & 0xff)
        st.stx_atime.tv_sec = Int64(node.atime.tv_sec)
        st.stx_atime.tv_nsec = UInt32(node.atime.tv_nsec)
        st.stx_mtime.tv_sec = Int64(node.mtime.tv_sec)
        st.stx_mtime.tv_nsec = UInt32(node.mtime.tv_nsec)
        st.stx_ctime.tv_sec = Int64(node.ctime.tv_sec)
        st.stx_ctime.tv_nsec = UInt32(node.ctime.tv_nsec)
        st.stx_btime.tv_sec = Int64(node.btime.tv_sec)
        st.stx_btime.tv_nsec = UInt32(node.btime.tv_nsec)
        return st
    }

    /// Directories along `components` from the root, made where missing; the last one's inode.
    mutating func makeDirectories(_ components: [String]) -> UInt64 {
        var current = InMemoryFileSystem.rootInode
        for component in components where !component.isEmpty {
            let name = Array(component.utf8)
            if let existing = nodes[current]!.entry(name) {
                current = existing
            } else {
                let made = makeNode(mode: Tree.directory | 0o755)
                link(made, into: current, name: name)
                current = made
            }
        }
        return current
    }

    /// The inode at a "/"-separated path from the root, or nil.
    func resolve(_ path: String) -> UInt64? {
        var current = InMemoryFileSystem.rootInode
        for component in path.split(separator: "/") {
            guard let next = nodes[current]!.entry(Array(component.utf8)) else { return nil }
            current = next
        }
        return current
    }
}
