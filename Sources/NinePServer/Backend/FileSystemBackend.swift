import CNinePShims
import Glibc

/// What a 9P2000.L server needs from the tree it exports: "what 9P means" stays in the
/// handlers, "how the tree does it" is here. `PosixBackend` is the host's file system through
/// *at() system calls; NinePTestSupport has an in-memory one with fault injection.
///
/// Handles are descriptor-like `Int32`s (real descriptors for POSIX, table indices for others):
/// a fid keeps them in its `FidEntry`, and every handle the backend returns is given back with
/// `close` exactly once. A *path handle* (from `openRoot`, `lookup`, `lookupParent`,
/// `duplicate`) names an inode; an *open handle* (from `open`, `openAt`, `openDirectoryAgain`)
/// is opened for I/O with Linux open(2) flags. Path operations accept open handles too.
///
/// Names are NUL-terminated single components the server has checked (never empty, ".", ".."
/// or containing "/"); buffers are the caller's, so nothing is allocated per call. Attributes
/// are Linux's `statx`. Every failure is a `FileSystemError` with the errno of the failing
/// call. Calls run on the server's worker threads (and on a connection's reader thread for
/// `stat`, `lookup`, `readCached`, `close`, `statfs`, `readLink`), possibly concurrently.
///
/// The server is generic over its backend (`FileServer<Backend>`), so calls are direct and
/// specialised: no existential on the request path.
public protocol FileSystemBackend: AnyObject, Sendable {
    // MARK: The export

    /// A new path handle on the exported root directory.
    func openRoot() throws(FileSystemError) -> Int32
    /// True when handles are this process's own descriptors, which localio may reopen and
    /// pass to a client (docs/LOCALIO.md); false for backends whose handles are only names.
    var handlesAreHostDescriptors: Bool { get }
    /// The device of the exported root (qid paths of other devices get a device index).
    var rootDevice: UInt64 { get }
    /// True when `st` describes the exported root itself (".." stops there).
    func isExportRoot(_ st: statx) -> Bool
    /// True when a Tattach's aname names this export.
    func isExportName(_ name: String) -> Bool
    /// For logs: what is exported.
    var exportDescription: String { get }
    /// Whether worker threads take the attaching user's identity (fsuid, fsgid, groups) for
    /// this backend when the server runs as root. False for a tree that checks no host identity.
    var usesHostIdentity: Bool { get }
    /// Exports by aname: the same tree exported from another directory, `path`. Handles of the
    /// result and of `self` must be interchangeable (one handle space): the server serves every
    /// fid's handles through its first backend and asks an export's own backend only about its
    /// root (`openRoot`, `isExportRoot`, `isExportName`, `exportDescription`, `locate`). The
    /// default throws ENOTSUP: a tree with one export only.
    func sibling(exporting path: String) throws(FileSystemError) -> Self

    // MARK: Handles and names

    func duplicate(_ handle: Int32) throws(FileSystemError) -> Int32
    func close(_ handle: Int32)
    /// A path handle on `name` in `directory`, not following a symlink (O_PATH|O_NOFOLLOW).
    func lookup(_ directory: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError) -> Int32
    /// A path handle on the parent of `directory` ("..").
    func lookupParent(_ directory: Int32) throws(FileSystemError) -> Int32
    /// Attributes of the handle's inode (never following a symlink).
    func stat(_ handle: Int32) throws(FileSystemError) -> statx
    /// Attributes of `name` in `directory`, not following a final symlink.
    func stat(_ directory: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError) -> statx
    /// The directory holding the handle's file (a new path handle) and its name there, for the
    /// rare operations that name a fid's own file (Trename, Tremove).
    func locate(_ handle: Int32) throws(FileSystemError) -> (parent: Int32, name: String)

    // MARK: Opening

    /// An open handle on the path handle's inode, with open(2) `flags` (no O_CREAT).
    func open(_ handle: Int32, flags: Int32) throws(FileSystemError) -> Int32
    /// openat(2): `flags` may hold O_CREAT and O_EXCL; `mode` is used as given (no umask).
    func openAt(_ directory: Int32, _ name: UnsafePointer<CChar>, flags: Int32, mode: UInt32) throws(FileSystemError) -> Int32
    /// A second open handle on an open directory, with a file position of its own.
    func openDirectoryAgain(_ handle: Int32) throws(FileSystemError) -> Int32
    /// Makes a stream's open handle non-blocking: reads and writes that would wait throw EAGAIN.
    func makeNonBlocking(_ handle: Int32)
    /// True when `st` is a FIFO, socket or character device: read and written in sequence,
    /// and waited on with `ReadinessWaiter` (whose epoll needs the handle to be a descriptor).
    func isStream(_ st: statx) -> Bool

    // MARK: Data

    /// Reads at `offset`, whole unless the file ends or an error stops it after some bytes.
    func read(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(FileSystemError) -> Int
    /// Reads only what can be had without waiting (the page cache); -1 when not all of it can.
    func readCached(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Int
    /// Writes at `offset`, whole unless an error stops it after some bytes.
    func write(_ handle: Int32, from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(FileSystemError) -> Int
    /// One read(2) of a stream (EAGAIN when it would wait).
    func readStream(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int
    /// One write(2) to a stream (EAGAIN when it would wait).
    func writeStream(_ handle: Int32, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int
    /// A hint: start writing back what was just written (see `Worker.write`).
    func startWriteback(_ handle: Int32, offset: UInt64, length: Int)
    func sync(_ handle: Int32, dataOnly: Bool) throws(FileSystemError)

    // MARK: Attributes. `opened`: the handle is an open one (fchmod) rather than a path (chmod).

    func changeMode(_ handle: Int32, opened: Bool, mode: UInt32) throws(FileSystemError)
    /// `UInt32.max` leaves the uid or the gid as it is.
    func changeOwner(_ handle: Int32, opened: Bool, uid: UInt32, gid: UInt32) throws(FileSystemError)
    /// `opened`: an open handle with write access (ftruncate); otherwise truncate(2) by path.
    func truncate(_ handle: Int32, opened: Bool, size: UInt64) throws(FileSystemError)
    /// utimensat semantics (UTIME_NOW, UTIME_OMIT); `symlink`: the handle names a symlink.
    func setTimes(_ handle: Int32, opened: Bool, symlink: Bool, access: timespec, modification: timespec) throws(FileSystemError)
    /// chown of `name` in `directory`, not following a symlink (--access client's give-away).
    func changeOwner(_ directory: Int32, _ name: UnsafePointer<CChar>, uid: UInt32, gid: UInt32) throws(FileSystemError)
    /// chmod of `name` in `directory` (--access client's give-away).
    func changeMode(_ directory: Int32, _ name: UnsafePointer<CChar>, mode: UInt32) throws(FileSystemError)
    func statfs(_ handle: Int32) throws(FileSystemError) -> ninep_statfs_result

    // MARK: Directories

    /// Sets an open directory's position to a cookie from `readDirectory` (0: the start).
    func seekDirectory(_ handle: Int32, to offset: UInt64) throws(FileSystemError)
    /// Fills `buffer` with `struct linux_dirent64` records (d_ino, d_off: the cookie after the
    /// entry, d_reclen, d_type, NUL-terminated d_name) from the position on; 0 at the end.
    func readDirectory(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int

    // MARK: Names

    func makeDirectory(_ directory: Int32, _ name: UnsafePointer<CChar>, mode: UInt32) throws(FileSystemError)
    func makeNode(_ directory: Int32, _ name: UnsafePointer<CChar>, mode: UInt32, device: UInt64) throws(FileSystemError)
    func makeSymlink(_ directory: Int32, _ name: UnsafePointer<CChar>, target: UnsafePointer<CChar>) throws(FileSystemError)
    /// A hard link to `file`'s inode named `name` in `directory`.
    func link(_ file: Int32, into directory: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError)
    func rename(
        _ directory: Int32, _ name: UnsafePointer<CChar>, to newDirectory: Int32, _ newName: UnsafePointer<CChar>
    ) throws(FileSystemError)
    func unlink(_ directory: Int32, _ name: UnsafePointer<CChar>, removeDirectory: Bool) throws(FileSystemError)
    /// The symlink's target, exactly as stored, into `buffer`; its length.
    func readLink(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int

    // MARK: Extended attributes

    /// The value of `name` into `buffer`; its length (ERANGE when it does not fit).
    func getXattr(_ handle: Int32, _ name: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int
    /// The NUL-separated names into `buffer`; their length.
    func listXattrs(_ handle: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int
    /// setxattr(2) flags: XATTR_CREATE 1, XATTR_REPLACE 2.
    func setXattr(_ handle: Int32, _ name: UnsafePointer<CChar>, value: UnsafeRawBufferPointer, flags: Int32) throws(FileSystemError)
    func removeXattr(_ handle: Int32, _ name: UnsafePointer<CChar>) throws(FileSystemError)

    // MARK: Locks (open-file-description locks: each open handle is its own owner)

    /// Sets or clears a lock without waiting: EAGAIN or EACCES when another owner's conflicts.
    func setLock(_ handle: Int32, _ lock: Glibc.flock) throws(FileSystemError)
    /// The first lock that conflicts with `lock`, or `lock` with l_type F_UNLCK.
    func getLock(_ handle: Int32, _ lock: Glibc.flock) throws(FileSystemError) -> Glibc.flock

    // MARK: Descriptor pressure (backends without a descriptor limit answer nil / ESTALE)

    /// A handle to reopen the path handle's inode by later, after it was closed to give its
    /// descriptor back; nil when it cannot be (an unlinked file, no file handles).
    func evictionHandle(of handle: Int32, device: UInt64, isDirectory: Bool) -> [UInt8]?
    /// Reopens a path handle from `evictionHandle`'s bytes.
    func reopen(evicted: [UInt8], device: UInt64) throws(FileSystemError) -> Int32
}

extension FileSystemBackend {
    public var handlesAreHostDescriptors: Bool { false }

    public func sibling(exporting path: String) throws(FileSystemError) -> Self {
        throw FileSystemError(errno: ENOTSUP)
    }
}
