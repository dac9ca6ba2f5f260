import CNinePShims
import Glibc
import NinePServer

/// Creating, linking, renaming and removing names; symlinks.
extension InMemoryFileSystem {
    public func makeDirectory(_ directory: Int32, _ name: UnsafePointer<CChar>, mode: UInt32) throws(FileSystemError) {
        try faults.apply(.makeDirectory) { String(cString: name) }
        try make(directory, name, mode: Tree.directory | (mode & 0o7777))
    }

    public func makeNode(_ directory: Int32, _ name: UnsafePointer<CChar>, mode: UInt32, device: UInt64) throws(FileSystemError) {
        try faults.apply(.makeNode) { String(cString: name) }
        let type = mode & Tree.typeMask
        guard type != Tree.directory && type != Tree.symlink else { throw FileSystemError(errno: EINVAL) }
        try make(directory, name, mode: (type == 0 ? Tree.regular : type) | (mode & 0o7777), device: device)
    }

    public func makeSymlink(_ directory: Int32, _ name: UnsafePointer<CChar>, target: UnsafePointer<CChar>) throws(FileSystemError) {
        try faults.apply(.makeSymlink) { String(cString: name) }
        try make(directory, name, mode: Tree.symlink | 0o777, data: Tree.bytes(target))
    }

    private func make(_ directory: Int32, _ name: UnsafePointer<CChar>, mode: UInt32, device: UInt64 = 0, data: [UInt8] = []) throws(FileSystemError) {
        try state.withLock { (tree) throws(FileSystemError) in
            let parent = try tree.directory(of: directory)
            let bytes = Tree.bytes(name)
            if tree.nodes[parent]!.entry(bytes) != nil { throw FileSystemError(errno: EEXIST) }
            let inode = tree.makeNode(mode: mode)
            tree.nodes[inode]!.device = device
            tree.nodes[inode]!.data = data
            tree.link(inode, into: parent, name: bytes)
        }
    }

    public func link(_ file: Int32, into directory: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError) {
        try faults.apply(.link) { String(cString: name) }
        try state.withLock { (tree) throws(FileSystemError) in
            let inode = try tree.inode(of: file)
            let parent = try tree.directory(of: directory)
            if tree.nodes[inode]!.isDirectory { throw FileSystemError(errno: EPERM) }
            if tree.nodes[inode]!.links <= 0 { throw FileSystemError(errno: ENOENT) }
            let bytes = Tree.bytes(name)
            if tree.nodes[parent]!.entry(bytes) != nil { throw FileSystemError(errno: EEXIST) }
            tree.link(inode, into: parent, name: bytes)
        }
    }

    public func rename(
        _ directory: Int32, _ name: UnsafePointer<CChar>, to newDirectory: Int32, _ newName: UnsafePointer<CChar>
    ) throws(FileSystemError) {
        try faults.apply(.rename) { String(cString: name) }
        try state.withLock { (tree) throws(FileSystemError) in
            let from = try tree.directory(of: directory)
            let to = try tree.directory(of: newDirectory)
            let oldBytes = Tree.bytes(name), newBytes = Tree.bytes(newName)
            guard let inode = tree.nodes[from]!.entry(oldBytes) else { throw FileSystemError(errno: ENOENT) }
            if from == to && oldBytes == newBytes { return }
            // A directory may not move beneath itself.
            var ancestor = to
            while ancestor != InMemoryFileSystem.rootInode {
                if ancestor == inode { throw FileSystemError(errno: EINVAL) }
                ancestor = tree.nodes[ancestor]!.parent
            }
            if let target = tree.nodes[to]!.entry(newBytes) {
                let moving = tree.nodes[inode]!, replaced = tree.nodes[target]!
                if replaced.isDirectory && !moving.isDirectory { throw FileSystemError(errno: EISDIR) }
                if !replaced.isDirectory && moving.isDirectory { throw FileSystemError(errno: ENOTDIR) }
                if replaced.isDirectory && !replaced.entries.isEmpty { throw FileSystemError(errno: ENOTEMPTY) }
                tree.unlink(newBytes, from: to)
            }
            tree.move(oldBytes, from: from, to: to, as: newBytes)
        }
    }

    public func unlink(_ directory: Int32, _ name: UnsafePointer<CChar>, removeDirectory: Bool) throws(FileSystemError) {
        try faults.apply(.unlink) { String(cString: name) }
        try state.withLock { (tree) throws(FileSystemError) in
            let parent = try tree.directory(of: directory)
            let bytes = Tree.bytes(name)
            guard let inode = tree.nodes[parent]!.entry(bytes) else { throw FileSystemError(errno: ENOENT) }
            let node = tree.nodes[inode]!
            if removeDirectory {
                guard node.isDirectory else { throw FileSystemError(errno: ENOTDIR) }
                guard node.entries.isEmpty else { throw FileSystemError(errno: ENOTEMPTY) }
            } else if node.isDirectory {
                throw FileSystemError(errno: EISDIR)
            }
            tree.unlink(bytes, from: parent)
        }
    }

    public func readLink(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        try faults.apply(.readLink) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int in
            let inode = try tree.inode(of: handle)
            guard tree.nodes[inode]!.mode & Tree.typeMask == Tree.symlink else { throw FileSystemError(errno: EINVAL) }
            return Self.copy(tree.nodes[inode]!.data, from: 0, into: buffer)
        }
    }
}

/// Extended attributes: any name, values up to 64 KiB.
extension InMemoryFileSystem {
    public func getXattr(_ handle: Int32, _ name: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        try faults.apply(.getXattr) { self.name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int in
            let inode = try tree.inode(of: handle)
            let key = Tree.bytes(name)
            guard let value = tree.nodes[inode]!.xattrs.first(where: { $0.name == key })?.value else { throw FileSystemError(errno: ENODATA) }
            if buffer.count > 0 && value.count > buffer.count { throw FileSystemError(errno: ERANGE) }
            return Self.copy(value, from: 0, into: buffer)
        }
    }

    public func listXattrs(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        try faults.apply(.listXattrs) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> Int in
            let inode = try tree.inode(of: handle)
            var list: [UInt8] = []
            for (name, _) in tree.nodes[inode]!.xattrs { list += name + [0] }
            if buffer.count > 0 && list.count > buffer.count { throw FileSystemError(errno: ERANGE) }
            return Self.copy(list, from: 0, into: buffer)
        }
    }

    public func setXattr(_ handle: Int32, _ name: UnsafePointer<CChar>, value: UnsafeRawBufferPointer, flags: Int32) throws(FileSystemError) {
        try faults.apply(.setXattr) { self.name(of: handle) }
        try state.withLock { (tree) throws(FileSystemError) in
            let inode = try tree.inode(of: handle)
            let key = Tree.bytes(name)
            let index = tree.nodes[inode]!.xattrs.firstIndex { $0.name == key }
            if flags & 1 != 0 && index != nil { throw FileSystemError(errno: EEXIST) }  // XATTR_CREATE
            if flags & 2 != 0 && index == nil { throw FileSystemError(errno: ENODATA) }  // XATTR_REPLACE
            let bytes = Array(value)
            if let index { tree.nodes[inode]!.xattrs[index].value = bytes } else { tree.nodes[inode]!.xattrs.append((key, bytes)) }
        }
    }

    public func removeXattr(_ handle: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError) {
        try faults.apply(.removeXattr) { self.name(of: handle) }
        try state.withLock { (tree) throws(FileSystemError) in
            let inode = try tree.inode(of: handle)
            let key = Tree.bytes(name)
            guard let index = tree.nodes[inode]!.xattrs.firstIndex(where: { $0.name == key }) else { throw FileSystemError(errno: ENODATA) }
            tree.nodes[inode]!.xattrs.remove(at: index)
        }
    }
}

/// Open-file-description locks: each open handle is an owner; closing it drops its locks.
/// A new lock replaces the owner's locks it overlaps (no splitting of ranges).
extension InMemoryFileSystem {
    public func setLock(_ handle: Int32, _ lock: Glibc.flock) throws(FileSystemError) {
        try faults.apply(.setLock) { name(of: handle) }
        try state.withLock { (tree) throws(FileSystemError) in
            let inode = try tree.opened(handle)
            let wanted = Tree.Lock(owner: handle, type: lock.l_type, start: UInt64(max(lock.l_start, 0)), length: UInt64(max(lock.l_len, 0)))
            if wanted.type != Int16(F_UNLCK), Self.conflict(tree.nodes[inode]!.locks, wanted) != nil {
                throw FileSystemError(errno: EAGAIN)
            }
            tree.nodes[inode]!.locks.removeAll { $0.owner == handle && $0.overlaps(wanted) }
            if wanted.type != Int16(F_UNLCK) { tree.nodes[inode]!.locks.append(wanted) }
        }
    }

    public func getLock(_ handle: Int32, _ lock: Glibc.flock) throws(FileSystemError) -> Glibc.flock {
        try faults.apply(.getLock) { name(of: handle) }
        return try state.withLock { (tree) throws(FileSystemError) -> Glibc.flock in
            let inode = try tree.opened(handle)
            let wanted = Tree.Lock(owner: handle, type: lock.l_type, start: UInt64(max(lock.l_start, 0)), length: UInt64(max(lock.l_len, 0)))
            var answer = lock
            if let found = Self.conflict(tree.nodes[inode]!.locks, wanted) {
                answer.l_type = found.type
                answer.l_start = off_t(clamping: found.start)
                answer.l_len = off_t(clamping: found.length)
                answer.l_pid = -1
            } else {
                answer.l_type = Int16(F_UNLCK)
            }
            return answer
        }
    }

    static func conflict(_ locks: [Tree.Lock], _ wanted: Tree.Lock) -> Tree.Lock? {
        locks.first { held in
            held.owner != wanted.owner && held.overlaps(wanted) && (held.type == Int16(F_WRLCK) || wanted.type == Int16(F_WRLCK))
        }
    }
}

/// No descriptor limit, so nothing is ever evicted.
extension InMemoryFileSystem {
    public func evictionHandle(of handle: Int32, device: UInt64, isDirectory: Bool) -> [UInt8]? { nil }

    public func reopen(evicted: [UInt8], device: UInt64) throws(FileSystemError) -> Int32 {
        try faults.apply(.reopenEvicted) { nil }
        throw FileSystemError(errno: ESTALE)
    }
}
