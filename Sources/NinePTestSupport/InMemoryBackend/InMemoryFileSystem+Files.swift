import CNinePShims
import Glibc
import NinePServer

/// Opening, reading and writing, directories and attributes.
extension InMemoryFileSystem {
    public func open(_ handle: Int32, flags: Int32) throws(FileSystemError) -> Int32 {
        try faults.apply(.open) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int32 in
            let inode = try tree.inode(of: handle)
            if flags & NINEP_O_PATH != 0 { return try tree.newHandle(inode) }
            return try openLocked(&tree, inode, flags: flags)
        }
    }

    public func openAt(_ directory: Int32, _ name: UnsafePointer<CChar>, flags: Int32, mode: UInt32) throws(FileSystemError) -> Int32 {
        try faults.apply(.openAt) { String(cString: name) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int32 in
            let parent = try tree.directory(of: directory)
            let bytes = Tree.bytes(name)
            if let existing = tree.nodes[parent]!.entry(bytes) {
                if flags & O_CREAT != 0 && flags & O_EXCL != 0 { throw FileSystemError(errno: EEXIST) }
                if flags & O_NOFOLLOW != 0 && tree.nodes[existing]!.mode & Tree.typeMask == Tree.symlink { throw FileSystemError(errno: ELOOP) }
                return try openLocked(&tree, existing, flags: flags)
            }
            guard flags & O_CREAT != 0 else { throw FileSystemError(errno: ENOENT) }
            let inode = tree.makeNode(mode: Tree.regular | (mode & 0o7777))
            tree.link(inode, into: parent, name: bytes)
            return try openLocked(&tree, inode, flags: flags)
        }
    }

    public func openDirectoryAgain(_ handle: Int32) throws(FileSystemError) -> Int32 {
        try faults.apply(.openDirectoryAgain) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int32 in
            try tree.newHandle(try tree.directory(of: handle), flags: O_RDONLY | O_DIRECTORY)
        }
    }

    private func openLocked(_ tree: inout Tree, _ inode: UInt64, flags: Int32) throws(FileSystemError) -> Int32 {
        let node = tree.nodes[inode]!
        let type = node.mode & Tree.typeMask
        if type == Tree.symlink { throw FileSystemError(errno: ELOOP) }
        if node.isDirectory && flags & O_ACCMODE != O_RDONLY { throw FileSystemError(errno: EISDIR) }
        if !node.isDirectory && flags & O_DIRECTORY != 0 { throw FileSystemError(errno: ENOTDIR) }
        if type != Tree.regular && !node.isDirectory { throw FileSystemError(errno: ENXIO) }  // no streams or devices
        if flags & O_TRUNC != 0 && flags & O_ACCMODE != O_RDONLY {
            tree.nodes[inode]!.data.removeAll()
            tree.nodes[inode]!.mtime = Tree.now()
        }
        return try tree.newHandle(inode, flags: flags)
    }

    public func makeNonBlocking(_ handle: Int32) {}

    /// Streams are never opened here (see `openLocked`).
    public func isStream(_ st: statx) -> Bool { false }

    public func read(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(FileSystemError) -> Int {
        try faults.apply(.read) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int in
            let inode = try tree.opened(handle)
            if tree.nodes[inode]!.isDirectory { throw FileSystemError(errno: EISDIR) }
            return Self.copy(tree.nodes[inode]!.data, from: offset, into: buffer)
        }
    }

    /// Served at once unless a fault is planned for reads (a planned one must reach a worker).
    public func readCached(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Int {
        if faults.hasRule(for: .read) { return -1 }
        return state.withLock { tree in
            guard let inode = try? tree.opened(handle), !tree.nodes[inode]!.isDirectory else { return -1 }
            return Self.copy(tree.nodes[inode]!.data, from: offset, into: buffer)
        }
    }

    static func copy(_ data: [UInt8], from offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard offset < UInt64(data.count) else { return 0 }
        let n = min(buffer.count, data.count - Int(offset))
        data.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + Int(offset), byteCount: n) }
        return n
    }

    public func write(_ handle: Int32, from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(FileSystemError) -> Int {
        try faults.apply(.write) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int in
            let inode = try tree.opened(handle, forWriting: true)
            guard offset <= UInt64(Int32.max) else { throw FileSystemError(errno: EFBIG) }
            let end = Int(offset) + buffer.count
            if tree.nodes[inode]!.data.count < end {
                tree.nodes[inode]!.data.append(contentsOf: repeatElement(0, count: end - tree.nodes[inode]!.data.count))
            }
            tree.nodes[inode]!.data.withUnsafeMutableBytes { data in
                if buffer.count > 0 { (data.baseAddress! + Int(offset)).copyMemory(from: buffer.baseAddress!, byteCount: buffer.count) }
            }
            tree.nodes[inode]!.mtime = Tree.now()
            return buffer.count
        }
    }

    public func readStream(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        try faults.apply(.readStream) { name(of: handle) }
        throw FileSystemError(errno: EBADF)
    }

    public func writeStream(_ handle: Int32, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int {
        try faults.apply(.writeStream) { name(of: handle) }
        throw FileSystemError(errno: EBADF)
    }

    public func startWriteback(_ handle: Int32, offset: UInt64, length: Int) {}

    public func sync(_ handle: Int32, dataOnly: Bool) throws(FileSystemError) {
        try faults.apply(.sync) { name(of: handle) }
        _ = try state.withLock { (tree) throws(FileSystemError) -> UInt64 in try tree.opened(handle) }
    }

    // MARK: Directories

    public func seekDirectory(_ handle: Int32, to offset: UInt64) throws(FileSystemError) {
        try faults.apply(.seekDirectory) { name(of: handle) }
        try state.withLock { (tree) throws(FileSystemError) in
            _ = try tree.opened(handle)
            tree.handles[handle]!.position = offset
        }
    }

    public func readDirectory(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        try faults.apply(.readDirectory) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int in
            let inode = try tree.opened(handle)
            guard tree.nodes[inode]!.isDirectory else { throw FileSystemError(errno: ENOTDIR) }
            let node = tree.nodes[inode]!
            var listing: [Tree.Entry] = [Tree.Entry(cookie: 1, name: [UInt8(ascii: ".")], inode: inode),
                                         Tree.Entry(cookie: 2, name: [UInt8(ascii: "."), UInt8(ascii: ".")], inode: node.parent)]
            listing.append(contentsOf: node.entries)
            var used = 0
            for entry in listing where entry.cookie > tree.handles[handle]!.position {
                // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name
                let length = (19 + entry.name.count + 1 + 7) & ~7
                guard used + length <= buffer.count else {
                    if used == 0 { throw FileSystemError(errno: EINVAL) }
                    break
                }
                let record = buffer.baseAddress! + used
                record.storeBytes(of: entry.inode, as: UInt64.self)
                record.storeBytes(of: entry.cookie, toByteOffset: 8, as: UInt64.self)
                record.storeBytes(of: UInt16(length), toByteOffset: 16, as: UInt16.self)
                record.storeBytes(of: Self.direntType(tree.nodes[entry.inode]?.mode ?? 0), toByteOffset: 18, as: UInt8.self)
                entry.name.withUnsafeBytes { (record + 19).copyMemory(from: $0.baseAddress!, byteCount: entry.name.count) }
                (record + 19 + entry.name.count).initializeMemory(as: UInt8.self, repeating: 0, count: length - 19 - entry.name.count)
                used += length
                tree.handles[handle]!.position = entry.cookie
            }
            return used
        }
    }

    static func direntType(_ mode: UInt32) -> UInt8 { UInt8(truncatingIfNeeded: (mode & Tree.typeMask) >> 12) }

    // MARK: Attributes

    public func changeMode(_ handle: Int32, opened: Bool, mode: UInt32) throws(FileSystemError) {
        try faults.apply(.changeMode) { name(of: handle) }
        try change(handle) { node in node.mode = node.mode & Tree.typeMask | mode & 0o7777 }
    }

    public func changeOwner(_ handle: Int32, opened: Bool, uid: UInt32, gid: UInt32) throws(FileSystemError) {
        try faults.apply(.changeOwner) { name(of: handle) }
        try change(handle) { node in
            if uid != UInt32.max { node.uid = uid }
            if gid != UInt32.max { node.gid = gid }
        }
    }

    public func truncate(_ handle: Int32, opened: Bool, size: UInt64) throws(FileSystemError) {
        try faults.apply(.truncate) { name(of: handle) }
        guard size <= UInt64(Int32.max) else { throw FileSystemError(errno: EFBIG) }
        try change(handle) { node in
            if node.data.count > Int(size) { node.data.removeLast(node.data.count - Int(size)) }
            else { node.data.append(contentsOf: repeatElement(0, count: Int(size) - node.data.count)) }
            node.mtime = Tree.now()
        }
    }

    public func setTimes(_ handle: Int32, opened: Bool, symlink: Bool, access: timespec, modification: timespec) throws(FileSystemError) {
        try faults.apply(.setTimes) { name(of: handle) }
        try change(handle) { node in
            let now = Tree.now()
            func resolve(_ t: timespec, _ old: timespec) -> timespec {
                t.tv_nsec == (1 << 30) - 2 ? old : t.tv_nsec == (1 << 30) - 1 ? now : t  // UTIME_OMIT, UTIME_NOW
            }
            node.atime = resolve(access, node.atime)
            node.mtime = resolve(modification, node.mtime)
        }
    }

    public func changeOwner(_ directory: Int32, _ name: UnsafePointer<CChar>, uid: UInt32, gid: UInt32) throws(FileSystemError) {
        try faults.apply(.changeOwnerAt) { String(cString: name) }
        try change(directory, name) { node in
            if uid != UInt32.max { node.uid = uid }
            if gid != UInt32.max { node.gid = gid }
        }
    }

    public func changeMode(_ directory: Int32, _ name: UnsafePointer<CChar>, mode: UInt32) throws(FileSystemError) {
        try faults.apply(.changeModeAt) { String(cString: name) }
        try change(directory, name) { node in node.mode = node.mode & Tree.typeMask | mode & 0o7777 }
    }

    public func statfs(_ handle: Int32) throws(FileSystemError) -> ninep_statfs_result {
        try faults.apply(.statfs) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> ninep_statfs_result in
            _ = try tree.inode(of: handle)
            var s = ninep_statfs_result()
            s.type = 0x0102_1994  // tmpfs's magic
            s.block_size = 4096
            s.blocks = 1 << 20
            s.blocks_free = 1 << 19
            s.blocks_available = 1 << 19
            s.files = 1 << 16
            s.files_free = (1 << 16) - UInt64(tree.nodes.count)
            s.name_length = 255
            return s
        }
    }

    /// Applies `body` to the handle's node and sets its ctime.
    func change(_ handle: Int32, _ body: (inout Tree.Node) -> Void) throws(FileSystemError) {
        try state.withLock { (tree) throws(FileSystemError) in
            let inode = try tree.inode(of: handle)
            body(&tree.nodes[inode]!)
            tree.nodes[inode]!.ctime = Tree.now()
        }
    }

    func change(_ directory: Int32, _ name: UnsafePointer<CChar>, _ body: (inout Tree.Node) -> Void) throws(FileSystemError) {
        try state.withLock { (tree) throws(FileSystemError) in
            let parent = try tree.directory(of: directory)
            guard let inode = tree.nodes[parent]!.entry(Tree.bytes(name)) else { throw FileSystemError(errno: ENOENT) }
            body(&tree.nodes[inode]!)
            tree.nodes[inode]!.ctime = Tree.now()
        }
    }
}
