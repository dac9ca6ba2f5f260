import Glibc
import Synchronization

/// The group of each setgid directory the kernel was last told about, by node: what a new file
/// in it must belong to. A server that runs as root and gives new files the group the client
/// names (ninepd --access client) would otherwise give them the caller's group; the Linux
/// client does the same (v9fs_get_fsgid_for_create). Directories without the bit, the usual
/// case, cost one atomic load: nothing is stored for them.
final class SetgidDirectories: Sendable {
    private let groups = Mutex<[UInt64: UInt32]>([:])
    private let stored = Atomic<Int>(0)

    /// Notes attributes answered for `node` (mode and gid as the server numbers them).
    @inline(__always)
    func note(_ node: UInt64, mode: UInt32, gid: UInt32) {
        guard mode & UInt32(S_IFMT) == UInt32(S_IFDIR) else { return }
        if mode & UInt32(S_ISGID) != 0 {
            groups.withLock { groups in
                if groups.updateValue(gid, forKey: node) == nil { stored.add(1, ordering: .relaxed) }
            }
        } else if stored.load(ordering: .relaxed) > 0 {
            forget(node)
        }
    }

    /// The group new files in `node` get, when it is a setgid directory.
    @inline(__always)
    func group(of node: UInt64) -> UInt32? {
        guard stored.load(ordering: .relaxed) > 0 else { return nil }
        return groups.withLock { $0[node] }
    }

    func forget(_ node: UInt64) {
        guard stored.load(ordering: .relaxed) > 0 else { return }
        groups.withLock { groups in
            if groups.removeValue(forKey: node) != nil { stored.subtract(1, ordering: .relaxed) }
        }
    }
}
