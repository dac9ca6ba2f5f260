import CNinePShims
import Glibc

/// Creating, linking, renaming and removing names, and reading symlinks.
extension PosixBackend {
    public func makeDirectory(_ directory: Int32, _ name: UnsafePointer<CChar>, mode: UInt32) throws(FileSystemError) {
        try Self.check(mkdirat(directory, name, mode_t(mode)))
    }

    public func makeNode(_ directory: Int32, _ name: UnsafePointer<CChar>, mode: UInt32, device: UInt64) throws(FileSystemError) {
        try Self.check(mknodat(directory, name, mode_t(mode), dev_t(device)))
    }

    public func makeSymlink(_ directory: Int32, _ name: UnsafePointer<CChar>, target: UnsafePointer<CChar>) throws(FileSystemError) {
        try Self.check(symlinkat(target, directory, name))
    }

    public func link(_ file: Int32, into directory: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError) {
        try Self.check(ninep_fd_link(file, directory, name))
    }

    public func rename(
        _ directory: Int32, _ name: UnsafePointer<CChar>, to newDirectory: Int32, _ newName: UnsafePointer<CChar>
    ) throws(FileSystemError) {
        try Self.check(Glibc.renameat(directory, name, newDirectory, newName))
    }

    public func unlink(_ directory: Int32, _ name: UnsafePointer<CChar>, removeDirectory: Bool) throws(FileSystemError) {
        try Self.check(Glibc.unlinkat(directory, name, removeDirectory ? AT_REMOVEDIR : 0))
    }

    public func readLink(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        let n = readlinkat(handle, emptyPath, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
        if n < 0 { throw .current }
        return n
    }
}

/// Extended attributes, through the descriptor (/proc/self/fd for NINEP_O_PATH ones).
extension PosixBackend {
    public func getXattr(_ handle: Int32, _ name: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        let n = ninep_fd_getxattr(handle, name, buffer.baseAddress, buffer.count)
        if n < 0 { throw .current }
        return n
    }

    public func listXattrs(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        let n = ninep_fd_listxattr(handle, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count)
        if n < 0 { throw .current }
        return n
    }

    public func setXattr(_ handle: Int32, _ name: UnsafePointer<CChar>, value: UnsafeRawBufferPointer, flags: Int32) throws(FileSystemError) {
        try Self.check(ninep_fd_setxattr(handle, name, value.baseAddress, value.count, flags))
    }

    public func removeXattr(_ handle: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError) {
        try Self.check(ninep_fd_removexattr(handle, name))
    }
}

/// Open-file-description locks: released when the descriptor closes.
extension PosixBackend {
    public func setLock(_ handle: Int32, _ lock: Glibc.flock) throws(FileSystemError) {
        var lock = lock
        try Self.check(ninep_ofd_lock(handle, NINEP_F_OFD_SETLK, &lock))
    }

    public func getLock(_ handle: Int32, _ lock: Glibc.flock) throws(FileSystemError) -> Glibc.flock {
        var lock = lock
        try Self.check(ninep_ofd_lock(handle, NINEP_F_OFD_GETLK, &lock))
        return lock
    }
}

/// Descriptor pressure: a NINEP_O_PATH descriptor given back is reopened later from the
/// kernel's file handle with open_by_handle_at, which needs an open descriptor on the same
/// mount (one per device, recorded here) and CAP_DAC_READ_SEARCH (the caller raises it).
extension PosixBackend {
    public func evictionHandle(of handle: Int32, device: UInt64, isDirectory: Bool) -> [UInt8]? {
        var st = statx()
        guard ninep_statx(handle, emptyPath, NINEP_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, UInt32(STATX_NLINK), &st) == 0, st.stx_nlink > 0 else {
            return nil  // an unlinked file has no handle to come back by
        }
        var bytes = [UInt8](repeating: 0, count: Int(NINEP_HANDLE_CAPACITY))
        let length = bytes.withUnsafeMutableBytes { ninep_handle_of(handle, $0.baseAddress, $0.count) }
        guard length > 0, recordMount(device: device, from: handle, isDirectory: isDirectory) else { return nil }
        bytes.removeLast(bytes.count - Int(length))
        return bytes
    }

    public func reopen(evicted: [UInt8], device: UInt64) throws(FileSystemError) -> Int32 {
        guard let mountFd = mountDescriptors.withLock({ $0[device] }) else { throw FileSystemError(errno: ESTALE) }
        return try Self.descriptor(evicted.withUnsafeBytes { ninep_open_handle(mountFd, $0.baseAddress, NINEP_O_PATH | O_NOFOLLOW) })
    }

    /// Records a descriptor for `device` (a directory reopened O_RDONLY) if none is yet.
    private func recordMount(device: UInt64, from handle: Int32, isDirectory: Bool) -> Bool {
        mountDescriptors.withLock { table in
            if table[device] != nil { return true }
            guard isDirectory else { return false }
            let directory = ninep_reopen(handle, O_RDONLY | O_DIRECTORY)
            guard directory >= 0 else { return false }
            table[device] = directory
            return true
        }
    }
}
