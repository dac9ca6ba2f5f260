import NinePClient
import NinePWire
import NinePMemory
import Synchronization

/// The kernel's inodes and the fids behind them: one node id per file on the server (keyed by
/// qid path, so hard links and repeated lookups meet the same inode), with the count of
/// lookups the kernel holds. Each node keeps one walked, unopened fid; FORGET drops the count,
/// and at zero the node goes and its fid is clunked.
///
/// A file CREATE made gets its node without a fid (`rememberCreated`): the new file's open
/// handle and the attributes the CREATE answers with need none, and a create-close-unlink
/// never needs one at all, so the walk at CREATE and the clunk at FORGET are saved. The node
/// keeps its parent and name instead, and is walked there the first time something needs its
/// fid (`unwalked` / `resolve`: the walk must end at the same qid path and type, or the node
/// is stale: never another file). While the creating handle is open the node is also listed
/// in `openUnwalked`, so that an UNLINK or a RENAME over its name walks it first: an open,
/// unlinked file stays reachable through its node as before.
///
/// Directories may hold one spare clone of their fid (`takeSpare`/`putSpare`) for the next
/// CREATE in them (Tlcreate turns the fid it is sent on into the new file), at most
/// `spareCapacity` in all.
///
/// Node ids are never reused (a 64-bit counter), so a stale id from the kernel can only miss.
///
/// At most `capacity` nodes (the root included), reserved and made resident at start: the
/// dictionaries never grow,
/// so recording a lookup allocates nothing (Swift's dictionaries leave no tombstones behind a
/// removal). When full, `remember` refuses (the caller answers ENFILE) until FORGETs make room.
final class NodeTable: Sendable {
    struct Node {
        /// The walked fid; nil while a created node waits for its walk (see `name`).
        var file: RemoteFile?
        /// The server's file: the fid's qid, or the one Tlcreate answered.
        var qid: Qid
        var lookups: UInt64
        /// Only while `file` is nil: the directory and name to walk for it.
        var name: NodeName? = nil
        /// Only while `file` is nil: the handle CREATE opened, until its RELEASE (0: none).
        var creatingHandle: UInt64 = 0
        /// A directory's spare clone for the next CREATE in it.
        var spare: RemoteFile? = nil
        /// CREATEs in this directory (saturating): a spare is made from the second on.
        var creates: UInt32 = 0
    }

    /// What `forget` took away: dropped outside the lock, which clunks its fids in the
    /// background (`RemoteFile.deinit`).
    struct Forgotten {
        let file: RemoteFile?
        let spare: RemoteFile?
    }

    /// A node's fid, or where to walk for it.
    enum Fid {
        case walked(RemoteFile)
        case unwalked(NodeName, Qid)
        case missing
    }

    /// What `rememberCreated` did.
    enum Created {
        /// The node id to answer with; `dropped` is a fid the node no longer uses (an earlier
        /// file under the same inode number), for the caller to drop outside the lock.
        case node(UInt64, dropped: RemoteFile?)
        /// The node table is full.
        case full
        /// No room in `openUnwalked`: walk the node's fid now (the eager way).
        case walkNow
    }

    private struct State {
        var nodes: [UInt64: Node] = [:]
        var byQidPath: [UInt64: UInt64] = [:]
        var nextID: UInt64 = FuseProtocol.rootID + 1
        /// Unwalked nodes whose creating handle is open (at most `openUnwalkedCapacity`).
        var openUnwalked: [UInt64] = []
        var spares = 0

        /// Gives `node` (number `id`) the walked `file`: it no longer waits for a walk.
        mutating func bind(_ node: inout Node, _ id: UInt64, to file: RemoteFile) {
            node.file = file
            node.qid = file.qid
            node.name = nil
            if node.creatingHandle != 0 {
                node.creatingHandle = 0
                dropOpenUnwalked(id)
            }
        }

        mutating func dropOpenUnwalked(_ id: UInt64) {
            // Indexed, not iterated: a debug build's generic iterator allocates.
            for index in 0..<openUnwalked.count where openUnwalked[index] == id {
                openUnwalked.swapAt(index, openUnwalked.count - 1)
                openUnwalked.removeLast()
                return
            }
        }
    }

    private let state = Mutex(State())
    let capacity: Int
    /// Created nodes with their creating handle open and no fid yet, at most: an UNLINK scans
    /// them. Beyond, CREATE walks the node's fid at once, as before.
    static let openUnwalkedCapacity = 32
    /// Directories' spare clones at most (each is a fid, an O_PATH descriptor on ninepd).
    static let spareCapacity = 64

    /// The root: node 1, never forgotten.
    init(root: RemoteFile, capacity: Int) {
        self.capacity = max(2, capacity)
        state.withLock { state in
            state.nodes.reserveResident(self.capacity, value: Node(file: root, qid: root.qid, lookups: 0))
            state.byQidPath.reserveResident(self.capacity, value: 0)
            state.openUnwalked.reserveCapacity(Self.openUnwalkedCapacity)
            state.nodes[FuseProtocol.rootID] = Node(file: root, qid: root.qid, lookups: 1)
            state.byQidPath[root.qid.path] = FuseProtocol.rootID
        }
    }

    /// The node's walked fid; nil when there is no such node or it is not walked yet.
    func file(_ nodeID: UInt64) -> RemoteFile? { state.withLock { $0.nodes[nodeID]?.file } }

    /// The node's fid, or where to walk for it.
    func fid(_ nodeID: UInt64) -> Fid {
        state.withLock { state in
            guard let node = state.nodes[nodeID] else { return .missing }
            if let file = node.file { return .walked(file) }
            guard let name = node.name else { return .missing }
            return .unwalked(name, node.qid)
        }
    }

    /// The qid of the node's file (walked or not).
    func qid(of nodeID: UInt64) -> Qid? { state.withLock { $0.nodes[nodeID]?.qid } }

    /// Records one more lookup of `file`: the existing node when the server's file is already
    /// known (then `file` is dropped and its fid clunked in the background, unless the node
    /// had no fid yet: then it takes this one), else a new node. Returns the node id to give
    /// the kernel; nil when the file is new and the table is full.
    func remember(_ file: RemoteFile) -> UInt64? {
        state.withLock { state in
            if let id = state.byQidPath[file.qid.path], var node = state.nodes[id] {
                node.lookups += 1
                // A file deleted and recreated under the same inode number has a new qid version:
                // keep the newer fid, so the node reaches the file the kernel just looked up.
                if node.file == nil || node.qid.version != file.qid.version || node.qid.type != file.qid.type {
                    state.bind(&node, id, to: file)
                }
                state.nodes[id] = node
                return id
            }
            guard state.nodes.count < capacity else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.nodes[id] = Node(file: file, qid: file.qid, lookups: 1)
            state.byQidPath[file.qid.path] = id
            return id
        }
    }

    /// Records the node of a file CREATE just made (qid from Tlcreate) without a fid: it will
    /// be walked by `name` when first needed. `handle` is the creating handle.
    func rememberCreated(_ qid: Qid, name: NodeName, handle: UInt64) -> Created {
        state.withLock { state in
            guard state.openUnwalked.count < Self.openUnwalkedCapacity else { return .walkNow }
            var dropped: RemoteFile? = nil
            let id: UInt64
            if let known = state.byQidPath[qid.path], var node = state.nodes[known] {
                // Same inode number: a file unlinked before the kernel forgot its node, and the
                // new one got its number (as `remember` does, the node now stands for the new
                // file), or, same version and type, this very file (then it has all it needs).
                node.lookups += 1
                if node.file != nil && node.qid.version == qid.version && node.qid.type == qid.type {
                    state.nodes[known] = node
                    return .node(known, dropped: nil)
                }
                dropped = node.file
                node.file = nil
                node.qid = qid
                node.name = name
                if node.creatingHandle == 0 { state.openUnwalked.append(known) }
                node.creatingHandle = handle
                state.nodes[known] = node
                id = known
            } else {
                guard state.nodes.count < capacity else { return .full }
                id = state.nextID
                state.nextID += 1
                state.nodes[id] = Node(file: nil, qid: qid, lookups: 1, name: name, creatingHandle: handle)
                state.byQidPath[qid.path] = id
                state.openUnwalked.append(id)
            }
            return .node(id, dropped: dropped)
        }
    }

    /// Gives an unwalked node the fid just walked for it (its qid path and type checked by the
    /// caller). Returns the node's fid: `walked`, or the one another request gave it meanwhile
    /// (then the caller drops `walked`); nil when the node is gone or stands for another file.
    func resolve(_ nodeID: UInt64, _ walked: RemoteFile) -> RemoteFile? {
        state.withLock { state in
            guard var node = state.nodes[nodeID] else { return nil }
            if let file = node.file { return file }
            guard node.qid.path == walked.qid.path, node.qid.type == walked.qid.type else { return nil }
            state.bind(&node, nodeID, to: walked)
            state.nodes[nodeID] = node
            return walked
        }
    }

    /// RELEASE of `handle` on `nodeID`: if it was the node's creating handle, the node no
    /// longer needs walking before an UNLINK of its name. `handle` nil: any handle, which for
    /// an unwalked node can only be the creating one (an OPEN walks the node first).
    func released(_ nodeID: UInt64, handle: UInt64?) {
        state.withLock { state in
            guard !state.openUnwalked.isEmpty, var node = state.nodes[nodeID], node.creatingHandle != 0,
                  handle == nil || node.creatingHandle == handle else { return }
            node.creatingHandle = 0
            state.nodes[nodeID] = node
            state.dropOpenUnwalked(nodeID)
        }
    }

    /// The unwalked node named `name` in `parent` whose creating handle is still open, if any.
    func openUnwalked(parent: UInt64, name: ByteView) -> UInt64? {
        state.withLock { state in
            for index in 0..<state.openUnwalked.count {
                let id = state.openUnwalked[index]
                if let node = state.nodes[id], let known = node.name, known.equals(parent: parent, name: name) { return id }
            }
            return nil
        }
    }

    /// Records one more lookup of the node that already holds the server's file `qid` names (same
    /// path, version and type), without a new fid: the id to give the kernel, or nil when no node
    /// has that file walked (then the caller makes a `RemoteFile` and calls `remember`).
    func recordLookup(of qid: Qid) -> UInt64? {
        state.withLock { state in
            guard let id = state.byQidPath[qid.path], var node = state.nodes[id], node.file != nil,
                  node.qid.version == qid.version, node.qid.type == qid.type else { return nil }
            node.lookups += 1
            state.nodes[id] = node
            return id
        }
    }

    /// The node of `qid`'s file (by qid path), if the kernel holds one.
    func id(of qid: Qid) -> UInt64? { state.withLock { $0.byQidPath[qid.path] } }

    /// FORGET: the kernel dropped `count` lookups of `nodeID`. Returns what to drop (outside
    /// the lock) when the node is gone.
    func forget(_ nodeID: UInt64, count: UInt64) -> Forgotten? {
        guard nodeID != FuseProtocol.rootID else { return nil }
        return state.withLock { state -> Forgotten? in
            guard var node = state.nodes[nodeID] else { return nil }
            if node.lookups > count {
                node.lookups -= count
                state.nodes[nodeID] = node
                return nil
            }
            state.nodes[nodeID] = nil
            if state.byQidPath[node.qid.path] == nodeID { state.byQidPath[node.qid.path] = nil }
            if node.creatingHandle != 0 { state.dropOpenUnwalked(nodeID) }
            if node.spare != nil { state.spares -= 1 }
            return Forgotten(file: node.file, spare: node.spare)
        }
    }

    /// Gives the node of `file`'s server file (same qid path) this fid instead of its own, without
    /// counting a lookup (and drops its spare, which was cloned from the old fid). Returns the
    /// fids no longer used (the old one, or `file` when no node has it), for the caller to drop
    /// outside the lock.
    func replaceFile(_ file: RemoteFile) -> Forgotten {
        state.withLock { state in
            guard let id = state.byQidPath[file.qid.path], var node = state.nodes[id], id != FuseProtocol.rootID else {
                return Forgotten(file: file, spare: nil)
            }
            let old = node.file
            let spare = node.spare
            state.bind(&node, id, to: file)
            node.spare = nil
            if spare != nil { state.spares -= 1 }
            state.nodes[id] = node
            return Forgotten(file: old, spare: spare)
        }
    }

    // MARK: Spares

    /// The directory's spare clone, taken (nil when it has none), for a CREATE in it; and
    /// whether a new spare should be made for the next one (from its second CREATE on: a
    /// directory created into once does not hold a fid for nothing).
    func takeSpare(_ nodeID: UInt64) -> (spare: RemoteFile?, refill: Bool) {
        state.withLock { state in
            guard var node = state.nodes[nodeID] else { return (nil, false) }
            let spare = node.spare
            node.spare = nil
            if node.creates < UInt32.max { node.creates += 1 }
            state.nodes[nodeID] = node
            if spare != nil { state.spares -= 1 }
            return (spare, node.creates >= 2)
        }
    }

    /// The directory's walked fid when it should get a spare clone: it has none and the
    /// spares are not all given out.
    func wantsSpare(_ nodeID: UInt64) -> RemoteFile? {
        state.withLock { state in
            guard state.spares < Self.spareCapacity, let node = state.nodes[nodeID], node.spare == nil else { return nil }
            return node.file
        }
    }

    /// Keeps `spare` (a clone of the directory's fid `of`) for the next CREATE in the
    /// directory. Returns it back when it cannot be kept (the node gone, its fid replaced
    /// meanwhile, a spare already there, or all spares given out): the caller drops it.
    func putSpare(_ nodeID: UInt64, _ spare: RemoteFile, of directory: RemoteFile) -> RemoteFile? {
        state.withLock { state in
            guard state.spares < Self.spareCapacity, var node = state.nodes[nodeID], node.spare == nil, node.file === directory else { return spare }
            node.spare = spare
            state.nodes[nodeID] = node
            state.spares += 1
            return nil
        }
    }

    var count: Int { state.withLock { $0.nodes.count } }
    var spareCount: Int { state.withLock { $0.spares } }
    var unwalkedOpenCount: Int { state.withLock { $0.openUnwalked.count } }
}
