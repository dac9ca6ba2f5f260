import Glibc
import NinePClient
import NinePMemory
import Synchronization

/// The mount's FUSE passthrough state: which nodes have a backing file registered with the
/// kernel (FUSE_DEV_IOC_BACKING_OPEN on /dev/fuse), and how the opens of each node were
/// answered. docs/LOCALIO.md, "ninep mount".
///
/// The kernel's rules (fs/fuse/iomode.c) shape it:
/// - an inode has at most one backing file while any passthrough open of it lasts: every
///   other open of it must be answered FOPEN_PASSTHROUGH with the same backing (a second
///   registration of the same file is another backing: the open fails with EIO);
/// - an inode with cached (non-passthrough) opens cannot take a passthrough open (EIO), and
///   the reverse;
/// so the backing id stays registered until the node's last passthrough open is released
/// (BACKING_CLOSE then), and a node's opens are all passthrough or all not. The kernel keeps
/// its own reference to the backing file for as long as it uses it: closing the id earlier
/// would be safe for the open it was made for, but later opens of the inode could not name it.
final class PassthroughBackings: Sendable {
    struct Backing {
        var id: Int32
        var readable: Bool
        var writable: Bool
        var opens: Int
    }

    private struct State {
        var backings: [UInt64: Backing] = [:]
        /// Opens answered without passthrough, by node (the kernel keeps such an inode cached).
        var plainOpens: [UInt64: Int] = [:]
        /// Every open file's node and whether it is passthrough, by handle.
        var handles: [UInt64: (node: UInt64, passthrough: Bool)] = [:]
    }

    /// The session's /dev/fuse descriptor once INIT agreed on passthrough; -1 until then and
    /// after the kernel refused a registration for lack of privilege.
    private let fuseFD = Atomic<Int32>(-1)
    private let state: Mutex<State>
    /// FUSE READs and WRITEs this daemon served (a passthrough file sends none).
    let reads = Atomic<UInt64>(0)
    let writes = Atomic<UInt64>(0)
    /// Opens answered with a backing, with the grant kept by the daemon's workers, and the
    /// registrations the kernel refused.
    let passthroughOpens = Atomic<UInt64>(0)
    let workerGrants = Atomic<UInt64>(0)
    let refusals = Atomic<UInt64>(0)

    init(capacity: Int) {
        var initial = State()
        initial.backings.reserveResident(capacity, value: Backing(id: -1, readable: false, writable: false, opens: 0))
        initial.plainOpens.reserveResident(capacity, value: 0)
        initial.handles.reserveResident(capacity, value: (node: 0, passthrough: false))
        state = Mutex(initial)
    }

    /// From now on, opens of regular files may be passthrough.
    func enable(fuseFD fd: Int32) { fuseFD.store(fd, ordering: .releasing) }

    var enabled: Bool { fuseFD.load(ordering: .acquiring) >= 0 }

    /// What an open of `node` must be answered with, decided before any grant is asked for.
    enum Decision {
        /// The node has a backing: this open uses it (recorded already). `covers`: the
        /// backing's access covers the open's; if not, data goes through this daemon
        /// (FOPEN_DIRECT_IO with the backing: only mmap uses the backing file).
        case existing(id: Int32, covers: Bool)
        /// No backing and no cached opens: a grant may make this the first passthrough open.
        case firstOpen
        /// The node has cached opens (or passthrough is off): no passthrough (recorded).
        case plain
    }

    func decide(node: UInt64, handle: UInt64, read: Bool, write: Bool) -> Decision {
        let passthrough = enabled
        return state.withLock { state in
            if var backing = state.backings[node] {
                backing.opens += 1
                state.backings[node] = backing
                state.handles[handle] = (node, true)
                return .existing(id: backing.id, covers: (!read || backing.readable) && (!write || backing.writable))
            }
            if passthrough && state.plainOpens[node, default: 0] == 0 { return .firstOpen }
            state.plainOpens[node, default: 0] += 1
            state.handles[handle] = (node, false)
            return .plain
        }
    }

    /// After `.firstOpen` and a grant held by `file`: registers it as the node's backing (or
    /// joins one another open registered meanwhile). The backing id when the open is
    /// passthrough, nil when it is plain (recorded either way); `covers` as in `Decision`.
    func register(node: UInt64, handle: UInt64, file: RemoteFile, read: Bool, write: Bool, log: (String) -> Void) -> (id: Int32, covers: Bool)? {
        state.withLock { state in
            if var backing = state.backings[node] {
                backing.opens += 1
                state.backings[node] = backing
                state.handles[handle] = (node, true)
                return (backing.id, (!read || backing.readable) && (!write || backing.writable))
            }
            let fd = fuseFD.load(ordering: .acquiring)
            if fd >= 0 && state.plainOpens[node, default: 0] == 0 {
                let registered = file.withLocalDescriptor { grant, readable, writable -> (Int32, Bool, Bool) in
                    (Self.backingOpen(fuseFD: fd, file: grant), readable, writable)
                }
                if let registered {
                    let (id, readable, writable) = registered
                    if id >= 0 {
                        state.backings[node] = Backing(id: id, readable: readable, writable: writable, opens: 1)
                        state.handles[handle] = (node, true)
                        return (id, (!read || readable) && (!write || writable))
                    }
                    refused(-id, log: log)
                }
            }
            state.plainOpens[node, default: 0] += 1
            state.handles[handle] = (node, false)
            return nil
        }
    }

    /// The open of `handle` is over (RELEASE, or its reply never reached the kernel): the last
    /// passthrough open of a node unregisters its backing.
    func released(_ handle: UInt64) {
        let fd = fuseFD.load(ordering: .acquiring)
        state.withLock { state in
            guard let entry = state.handles.removeValue(forKey: handle) else { return }
            let (node, passthrough) = entry
            if passthrough {
                guard var backing = state.backings[node] else { return }
                backing.opens -= 1
                if backing.opens > 0 {
                    state.backings[node] = backing
                } else {
                    state.backings.removeValue(forKey: node)
                    // The kernel's files keep their own references; the id alone goes.
                    if fd >= 0 { Self.backingClose(fuseFD: fd, id: backing.id) }
                }
            } else {
                let left = state.plainOpens[node, default: 1] - 1
                if left > 0 { state.plainOpens[node] = left } else { state.plainOpens.removeValue(forKey: node) }
            }
        }
    }

    /// Backing ids registered now, passthrough handles open, plain handles open.
    var counts: (backings: Int, passthroughHandles: Int, plainHandles: Int) {
        state.withLock { state in
            let passthrough = state.handles.values.reduce(0) { $0 + ($1.passthrough ? 1 : 0) }
            return (state.backings.count, passthrough, state.handles.count - passthrough)
        }
    }

    private func refused(_ code: Int32, log: (String) -> Void) {
        let first = refusals.add(1, ordering: .relaxed).oldValue == 0
        if code == EPERM {
            // No privilege now means none later: stop asking (the workers use the grants).
            fuseFD.store(-1, ordering: .releasing)
            log("FUSE passthrough refused by the kernel (EPERM: needs CAP_SYS_ADMIN in the initial user namespace): files use their grants from this daemon's workers instead")
        } else if first {
            log("FUSE passthrough: the kernel refused a backing file (\(String(cString: strerror(code)))): that file uses its grant from this daemon's workers; logged once")
        }
    }

    // MARK: ioctls (include/uapi/linux/fuse.h; Debian 12's header predates them)

    /// _IOW(229, 1, struct fuse_backing_map { int32 fd; uint32 flags; uint64 padding }).
    static let backingOpenRequest: UInt = 0x4010_E501
    /// _IOW(229, 2, uint32_t).
    static let backingCloseRequest: UInt = 0x4004_E502

    /// The backing id (>= 0), or -errno.
    static func backingOpen(fuseFD: Int32, file: Int32) -> Int32 {
        var map: (Int32, UInt32, UInt64) = (file, 0, 0)
        let id = withUnsafeMutablePointer(to: &map) { ioctl(fuseFD, backingOpenRequest, UnsafeMutableRawPointer($0)) }
        return id >= 0 ? id : -errno
    }

    static func backingClose(fuseFD: Int32, id: Int32) {
        var value = UInt32(bitPattern: id)
        _ = withUnsafeMutablePointer(to: &value) { ioctl(fuseFD, backingCloseRequest, UnsafeMutableRawPointer($0)) }
    }
}

extension NinePFileSystem {
    /// Called once INIT agreed on FUSE_PASSTHROUGH: opens of regular files may now be handed
    /// to the kernel, registered on `fuseFD` (the session's /dev/fuse descriptor).
    public func enablePassthrough(fuseFD: Int32) { passthrough.enable(fuseFD: fuseFD) }

    /// For the status line: the data paths of open files, and the READs and WRITEs served.
    public var dataPathSummary: String {
        let (backings, passthroughHandles, plainHandles) = passthrough.counts
        return "; passthrough \(passthrough.enabled ? "on" : "off"): \(backings) backings, \(passthroughHandles) passthrough and \(plainHandles) other open files, \(passthrough.passthroughOpens.load(ordering: .relaxed)) passthrough opens, \(passthrough.workerGrants.load(ordering: .relaxed)) worker grants, \(passthrough.refusals.load(ordering: .relaxed)) refused; READ \(passthrough.reads.load(ordering: .relaxed)) WRITE \(passthrough.writes.load(ordering: .relaxed))"
    }
}
