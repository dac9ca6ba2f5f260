import CNinePShims
import Glibc
import NinePMemory

/// The host's file system, exported from one directory: every operation is a system call
/// relative to a descriptor (*at() calls on NINEP_O_PATH descriptors, O_NOFOLLOW), so no path
/// outside the export is ever reached. Handles are the descriptors themselves.
public final class PosixBackend: FileSystemBackend {
    /// NINEP_O_PATH descriptor of the export, for the process's life.
    let rootFd: Int32
    public let rootDevice: UInt64
    let rootInode: UInt64
    let exportPath: String
    /// Where the export resolves (realpath), for /proc paths and anames.
    let rootRealPath: String
    /// One descriptor per device under the export, for open_by_handle_at (which needs a real
    /// open descriptor, not NINEP_O_PATH, on the same mount): a directory opened O_RDONLY, the
    /// export's own opened at start.
    let mountDescriptors = AdaptiveMutex<[UInt64: Int32]>([:])

    public struct OpenError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Opens the export directory `exportPath`.
    public init(exportPath: String) throws(OpenError) {
        self.exportPath = exportPath
        let fd = Glibc.open(exportPath, NINEP_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw OpenError(description: "cannot open export directory '\(exportPath)': \(String(decoding: strerrorBytes(errno), as: UTF8.self)); give an existing directory with --export")
        }
        var st = statx()
        guard ninep_statx(fd, "", NINEP_AT_EMPTY_PATH, UInt32(STATX_BASIC_STATS), &st) == 0 else {
            Glibc.close(fd)
            throw OpenError(description: "cannot stat export directory '\(exportPath)'")
        }
        rootFd = fd
        rootDevice = st.deviceID
        rootInode = st.stx_ino
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        if realpath(exportPath, &resolved) != nil {
            rootRealPath = String(decoding: resolved.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        } else {
            rootRealPath = exportPath
        }
        let mount = ninep_reopen(fd, O_RDONLY | O_DIRECTORY)
        if mount >= 0 { mountDescriptors.withLock { $0[rootDevice] = mount } }
    }

    deinit {
        Glibc.close(rootFd)
        mountDescriptors.withLock { table in for fd in table.values { Glibc.close(fd) } }
    }

    // MARK: The export

    public func openRoot() throws(FileSystemError) -> Int32 { try duplicate(rootFd) }

    public func isExportRoot(_ st: statx) -> Bool { st.deviceID == rootDevice && st.stx_ino == rootInode }

    public func isExportName(_ name: String) -> Bool { name == exportPath || name == rootRealPath }

    public var exportDescription: String { exportPath == rootRealPath ? rootRealPath : "\(exportPath) (\(rootRealPath))" }

    public var usesHostIdentity: Bool { true }

    /// Another directory of the host: handles are descriptors, valid whichever instance made them.
    public func sibling(exporting path: String) throws(FileSystemError) -> PosixBackend {
        let probe = Glibc.open(path, NINEP_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard probe >= 0 else { throw .current }
        Glibc.close(probe)
        do throws(OpenError) {
            return try PosixBackend(exportPath: path)
        } catch {
            throw FileSystemError(errno: ENOENT)
        }
    }

    // MARK: Handles and names

    public func duplicate(_ handle: Int32) throws(FileSystemError) -> Int32 {
        try Self.descriptor(fcntl(handle, F_DUPFD_CLOEXEC, 0))
    }

    public func close(_ handle: Int32) { Glibc.close(handle) }

    public func lookup(_ directory: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError) -> Int32 {
        try Self.descriptor(openat(directory, name, NINEP_O_PATH | O_NOFOLLOW | O_CLOEXEC))
    }

    public func lookupParent(_ directory: Int32) throws(FileSystemError) -> Int32 {
        try Self.descriptor(openat(directory, "..", NINEP_O_PATH | O_DIRECTORY | O_CLOEXEC))
    }

    public func stat(_ handle: Int32) throws(FileSystemError) -> statx {
        var st = statx()
        if ninep_statx(handle, emptyPath, NINEP_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, UInt32(STATX_BASIC_STATS | STATX_BTIME), &st) != 0 {
            throw .current
        }
        return st
    }

    public func stat(_ directory: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError) -> statx {
        var st = statx()
        if ninep_statx(directory, name, AT_SYMLINK_NOFOLLOW, UInt32(STATX_BASIC_STATS | STATX_BTIME), &st) != 0 {
            throw .current
        }
        return st
    }

    /// The fid knows an inode, not a name: its current name is read from /proc and re-resolved
    /// beneath the export root, then checked to be the same inode.
    public func locate(_ handle: Int32) throws(FileSystemError) -> (parent: Int32, name: String) {
        var code: Int32 = 0
        let read: String? = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 4096) { buffer in
            let n = ninep_fd_readlink_path(handle, buffer.baseAddress!, buffer.count - 1)
            if n < 0 {
                code = errno
                return nil
            }
            return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress!, count: n), as: UTF8.self)
        }
        guard let path = read else { throw FileSystemError(errno: code) }
        let root = rootRealPath == "/" ? "" : rootRealPath
        guard path.hasPrefix(root + "/"), !path.hasSuffix(" (deleted)") else { throw FileSystemError(errno: ENOENT) }
        let relative = path.dropFirst(root.count + 1)
        let parentPath: String
        let name: String
        if let slash = relative.lastIndex(of: "/") {
            parentPath = String(relative[..<slash])
            name = String(relative[relative.index(after: slash)...])
        } else {
            parentPath = "."
            name = String(relative)
        }
        let parent = ninep_openat2_beneath(rootFd, parentPath, NINEP_O_PATH | O_DIRECTORY | O_CLOEXEC, 0)
        if parent < 0 { throw .current }
        let found: statx
        do throws(FileSystemError) {
            let expected = try stat(handle)
            found = try stat(parent, name)
            guard found.stx_ino == expected.stx_ino, found.deviceID == expected.deviceID else { throw FileSystemError(errno: ENOENT) }
        } catch {
            Glibc.close(parent)
            throw error
        }
        return (parent, name)
    }

    // MARK: Opening

    public var handlesAreHostDescriptors: Bool { true }

    public func open(_ handle: Int32, flags: Int32) throws(FileSystemError) -> Int32 {
        try Self.descriptor(ninep_reopen(handle, flags))
    }

    public func openAt(_ directory: Int32, _ name: UnsafePointer<CChar>, flags: Int32, mode: UInt32) throws(FileSystemError) -> Int32 {
        try Self.descriptor(openat(directory, name, flags, mode_t(mode)))
    }

    public func openDirectoryAgain(_ handle: Int32) throws(FileSystemError) -> Int32 {
        try Self.descriptor(openat(handle, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC))
    }

    public func makeNonBlocking(_ handle: Int32) {
        _ = fcntl(handle, F_SETFL, fcntl(handle, F_GETFL) | O_NONBLOCK)
    }

    public func isStream(_ st: statx) -> Bool { FileMode.isStreaming(UInt32(st.stx_mode)) }

    /// A call's descriptor, or its errno.
    @inline(__always)
    static func descriptor(_ fd: Int32) throws(FileSystemError) -> Int32 {
        if fd < 0 { throw .current }
        return fd
    }

    /// A call's 0, or its errno.
    @inline(__always)
    static func check(_ rc: Int32) throws(FileSystemError) {
        if rc != 0 { throw .current }
    }
}

/// "" as a C string for the *at(fd, "", AT_EMPTY_PATH) calls: a Swift literal passed as a C
/// string is copied into a temporary in unoptimised builds, which would allocate per request.
/// nonisolated(unsafe): the one byte is written once, before the first read, and never again.
nonisolated(unsafe) let emptyPath: UnsafePointer<CChar> = {
    let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
    pointer.initialize(to: 0)
    return UnsafePointer(pointer)
}()
