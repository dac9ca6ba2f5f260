import CNinePShims
import Glibc
import NinePMemory
import NinePWire
import Synchronization

/// One worker thread's private state: its identity and scratch buffers for C strings and
/// directory reads, allocated once when the thread starts.
final class Worker<Backend: FileSystemBackend> {
    let server: FileServer<Backend>
    /// The exported tree (the server's), kept here for direct calls.
    let backend: Backend
    var identity: ThreadIdentity
    let thread: pthread_t
    /// NUL-terminated copies of names from the wire (the frame's strings are not terminated).
    let names: [UnsafeMutablePointer<CChar>]
    static var nameCapacity: Int { 4096 + 1 }
    let direntBuffer: UnsafeMutableRawBufferPointer
    /// The connection of the request being served (for descriptor-pressure relief).
    var connection: ServerConnection<Backend>?
    /// The request being served.
    var context: RequestContext<Backend>?
    /// A connection's reader serving requests itself: reads are tried from the page cache only.
    let onlyWithoutWaiting: Bool
    /// ServerConfiguration.writeBehind, read once.
    let writeBehind: Bool

    /// Heap bytes one worker's scratch takes (names, getdents64 buffer, flush tags, object).
    static func scratchBytes(direntCapacity: Int) -> Int {
        3 * nameCapacity + direntCapacity + 256
    }

    /// `direntCapacity`: bytes for getdents64 (0 for a reader, which never serves Treaddir).
    init(server: FileServer<Backend>, direntCapacity: Int = 64 * 1024, onlyWithoutWaiting: Bool = false) {
        self.onlyWithoutWaiting = onlyWithoutWaiting
        self.server = server
        backend = server.backend
        identity = ThreadIdentity(enabled: server.privileged)
        thread = pthread_self()
        writeBehind = server.configuration.writeBehind
        names = (0..<3).map { _ in UnsafeMutablePointer<CChar>.allocate(capacity: Worker<Backend>.nameCapacity) }
        direntBuffer = .allocate(byteCount: direntCapacity, alignment: 8)
    }

    /// Specialised for the host's backend here, in its own module (a caller elsewhere cannot
    /// specialise code that is not inlinable): the whole request path below runs specialised.
    @_specialize(exported: false, kind: full, where Backend == PosixBackend)
    func run() {
        _ = ninep_unblock_interrupt_signal(ninep_interrupt_signal())
        if server.ioFlusher { _ = ninep_set_io_flusher() }
        clearThreadUmask()
        while let context = server.queue.dequeue() {
            context.connection.serve(context, on: self)
        }
    }

    /// Tlcreate/Tmkdir/Tmknod carry a mode the client has umasked already: threads that create
    /// (the workers, and each connection's reader, which serves Tlcreate with O_EXCL) create
    /// with exactly that mode. The umask is the thread's own, so the process's (which an
    /// embedding program and the unix sockets' modes go by) stays as it was. Call on the
    /// thread that serves with this worker.
    func clearThreadUmask() {
        if ninep_thread_own_umask(0) != 0 {
            let code = errno
            if !umaskWarned.exchange(true, ordering: .relaxed) {
                server.logger.warning("worker threads cannot have their own umask (unshare CLONE_FS: errno \(code)): new files get the client's mode masked again by the process umask")
            }
        }
    }

    enum NameError: Error { case invalid, tooLong }

    /// The group a new file is created with: the one the request names (the creating process's
    /// fsgid, see `ThreadIdentity.setCreationGroup`), or the squash group on a squashed export,
    /// where every file belongs to the squash user.
    func creationGroup(_ requested: UInt32, _ entry: FidEntry<Backend>) -> UInt32 {
        entry.export?.configuration.squash?.gid ?? requested
    }

    /// For the few handlers that must allocate (attach, xattrs): Rlerror ENOMEM when malloc
    /// refuses now, instead of a trap inside the handler.
    func requireAllocatable() throws(ServerErrno) {
        if !MemoryProbe.canAllocate(bytes: 256 * 1024) { throw ServerErrno(LinuxErrno.ENOMEM) }
    }

    /// Copies a path component into scratch slot `slot` as a C string, rejecting what must
    /// never reach a *at() call: empty names, "/", NUL bytes, "." and "..".
    func componentName(_ view: ByteView, slot: Int) -> Result<UnsafePointer<CChar>, ServerErrno> {
        if view.count > server.configuration.maxNameLength { return .failure(ServerErrno(LinuxErrno.ENAMETOOLONG)) }
        if view.count == 0 || view.equals(".") || view.equals("..") { return .failure(ServerErrno(LinuxErrno.EINVAL)) }
        if view.contains(byte: UInt8(ascii: "/")) || view.contains(byte: 0) { return .failure(ServerErrno(LinuxErrno.EINVAL)) }
        return .success(copyC(view, slot: slot))
    }

    /// Copies arbitrary bytes (a symlink target, an xattr name) as a C string.
    func cString(_ view: ByteView, slot: Int, limit: Int = 4095) -> Result<UnsafePointer<CChar>, ServerErrno> {
        if view.count > limit { return .failure(ServerErrno(LinuxErrno.ENAMETOOLONG)) }
        if view.contains(byte: 0) { return .failure(ServerErrno(LinuxErrno.EINVAL)) }
        return .success(copyC(view, slot: slot))
    }

    private func copyC(_ view: ByteView, slot: Int) -> UnsafePointer<CChar> {
        let destination = names[slot]
        if view.count > 0 {
            UnsafeMutableRawPointer(destination).copyMemory(from: view.base.baseAddress!, byteCount: view.count)
        }
        destination[view.count] = 0
        return UnsafePointer(destination)
    }
}

/// One warning per process when a worker cannot clear its umask.
private let umaskWarned = Atomic<Bool>(false)
