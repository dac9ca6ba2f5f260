import NinePClient
import NinePWire
import NinePMemory
import Synchronization

/// The kernel's inodes and the fids behind them: one node id per file on the server (keyed by
/// qid path, so hard links and repeated lookups meet the same inode), with the count of
/// lookups the kernel holds. Each node keeps one walked, unopened fid; FORGET drops the count,
/// and at zero the node goes and its fid is clunked.
///
/// Node ids are never reused (a 64-bit counter), so a stale id from the kernel can only miss.
///
/// At most `capacity` nodes (the root included), reserved and made resident at start: the
/// dictionaries never grow,
/// so recording a lookup allocates nothing (Swift's dictionaries leave no tombstones behind a
/// removal). When full, `remember` refuses (the caller answers ENFILE) until FORGETs make room.
final class NodeTable: Sendable {
    struct Node {
        var file: RemoteFile
        var lookups: UInt64
    }

    private struct State {
        var nodes: [UInt64: Node] = [:]
        var byQidPath: [UInt64: UInt64] = [:]
        var nextID: UInt64 = FuseProtocol.rootID + 1
    }

    private let state = Mutex(State())
    let capacity: Int

    /// The root: node 1, never forgotten.
    init(root: RemoteFile, capacity: Int) {
        self.capacity = max(2, capacity)
        state.withLock { state in
            state.nodes.reserveResident(self.capacity, value: Node(file: root, lookups: 0))
            state.byQidPath.reserveResident(self.capacity, value: 0)
            state.nodes[FuseProtocol.rootID] = Node(file: root, lookups: 1)
            state.byQidPath[root.qid.path] = FuseProtocol.rootID
        }
    }

    func file(_ nodeID: UInt64) -> RemoteFile? { state.withLock { $0.nodes[nodeID]?.file } }

    /// Records one more lookup of `file`: the existing node when the server's file is already
    /// known (then `file` is dropped and its fid clunked in the background), else a new node.
    /// Returns the node id to give the kernel; nil when the file is new and the table is full.
    func remember(_ file: RemoteFile) -> UInt64? {
        state.withLock { state in
            if let id = state.byQidPath[file.qid.path], var node = state.nodes[id] {
                node.lookups += 1
                // A file deleted and recreated under the same inode number has a new qid version:
                // keep the newer fid, so the node reaches the file the kernel just looked up.
                if node.file.qid.version != file.qid.version || node.file.qid.type != file.qid.type { node.file = file }
                state.nodes[id] = node
                return id
            }
            guard state.nodes.count < capacity else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.nodes[id] = Node(file: file, lookups: 1)
            state.byQidPath[file.qid.path] = id
            return id
        }
    }

    /// Records one more lookup of the node that already holds the server's file `qid` names (same
    /// path, version and type), without a new fid: the id to give the kernel, or nil when no node
    /// has that file (then the caller makes a `RemoteFile` and calls `remember`).
    func recordLookup(of qid: Qid) -> UInt64? {
        state.withLock { state in
            guard let id = state.byQidPath[qid.path], var node = state.nodes[id],
                  node.file.qid.version == qid.version, node.file.qid.type == qid.type else { return nil }
            node.lookups += 1
            state.nodes[id] = node
            return id
        }
    }

    /// The node of `qid`'s file (by qid path), if the kernel holds one.
    func id(of qid: Qid) -> UInt64? { state.withLock { $0.byQidPath[qid.path] } }

    /// FORGET: the kernel dropped `count` lookups of `nodeID`. Returns the fid to clunk when the
    /// node is gone (the caller drops it outside the lock).
    func forget(_ nodeID: UInt64, count: UInt64) -> RemoteFile? {
        guard nodeID != FuseProtocol.rootID else { return nil }
        return state.withLock { state -> RemoteFile? in
            guard var node = state.nodes[nodeID] else { return nil }
            if node.lookups > count {
                node.lookups -= count
                state.nodes[nodeID] = node
                return nil
            }
            state.nodes[nodeID] = nil
            if state.byQidPath[node.file.qid.path] == nodeID { state.byQidPath[node.file.qid.path] = nil }
            return node.file
        }
    }

    /// Gives the node of `file`'s server file (same qid path) this fid instead of its own, without
    /// counting a lookup. Returns the fid no longer used (the old one, or `file` when no node has
    /// it), for the caller to drop outside the lock.
    func replaceFile(_ file: RemoteFile) -> RemoteFile {
        state.withLock { state in
            guard let id = state.byQidPath[file.qid.path], var node = state.nodes[id], id != FuseProtocol.rootID else { return file }
            let old = node.file
            node.file = file
            state.nodes[id] = node
            return old
        }
    }

    var count: Int { state.withLock { $0.nodes.count } }
}
