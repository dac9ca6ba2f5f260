import NinePClient
import NinePWire
import Synchronization

/// The name a node was last handed to the kernel under: its parent node and the bytes of the
/// name. A per-user fid for the node is walked from the parent's fid for that user by this name.
///
/// `@unchecked Sendable`: `bytes` is written once, in `init`, before the object is shared, and
/// only read afterwards; it is freed in `deinit`, when no reference (and so no reader) is left.
final class NodeName: @unchecked Sendable {
    let parent: UInt64
    private let bytes: UnsafeMutableRawBufferPointer

    init(parent: UInt64, name: ByteView) {
        self.parent = parent
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(name.count, 1), alignment: 1)
        if name.count > 0 { bytes.copyMemory(from: name.base) }
        count = name.count
    }

    private let count: Int

    deinit { bytes.deallocate() }

    /// Valid while this object is referenced.
    var name: ByteView { ByteView(UnsafeRawBufferPointer(rebasing: bytes[0..<count])) }

    func equals(parent: UInt64, name other: ByteView) -> Bool { self.parent == parent && name == other }
}

/// Fids per (node, user) for a mount where every calling user has an attach of its own (see
/// `IdentityOptions`), kept apart from `NodeTable`, whose fids are the mount's own attach.
///
/// - Roots: one attach per uid, made when that user first calls, kept for the mount's life.
/// - Names: per node, the parent and name it was last looked up (or created, linked, renamed)
///   under; with hard links any of them serves.
/// - Fids: at most `capacity` walked fids, in least-recently-used order; inserting into a full
///   table drops the oldest (its fid is clunked, and walked again when next needed). FORGET of a
///   node drops its fids and name.
///
/// The slots are allocated once; the dictionaries reserve room for `capacity` entries up front.
/// A lookup is one dictionary probe under the mutex (a later fixed-size hash could replace it).
final class UserFids: Sendable {
    struct Key: Hashable {
        var node: UInt64
        var uid: UInt32
    }

    private struct Slot {
        var key = Key(node: 0, uid: 0)
        var file: RemoteFile? = nil
        /// The least-recently-used list: `older` toward the tail, `newer` toward the head.
        var older = -1
        var newer = -1
        /// The next slot of the same node (a singly linked chain from `firstOfNode`).
        var nextOfNode = -1
    }

    private struct State {
        var roots: [UInt32: RemoteFile] = [:]
        var names: [UInt64: NodeName] = [:]
        var index: [Key: Int] = [:]
        var firstOfNode: [UInt64: Int] = [:]
        var slots: [Slot]
        var free: [Int]
        var newest = -1
        var oldest = -1
        var evictions = 0

        init(capacity: Int) {
            slots = Array(repeating: Slot(), count: capacity)
            free = Array((0..<capacity).reversed())
            index.reserveCapacity(capacity)
            firstOfNode.reserveCapacity(capacity)
            names.reserveCapacity(capacity)
        }

        mutating func unlinkFromRecency(_ i: Int) {
            let older = slots[i].older, newer = slots[i].newer
            if older >= 0 { slots[older].newer = newer } else { oldest = newer }
            if newer >= 0 { slots[newer].older = older } else { newest = older }
            slots[i].older = -1
            slots[i].newer = -1
        }

        mutating func makeNewest(_ i: Int) {
            slots[i].older = newest
            slots[i].newer = -1
            if newest >= 0 { slots[newest].newer = i }
            newest = i
            if oldest < 0 { oldest = i }
        }

        mutating func unlinkFromNode(_ i: Int) {
            let node = slots[i].key.node
            guard var cursor = firstOfNode[node] else { return }
            if cursor == i {
                let next = slots[i].nextOfNode
                if next >= 0 { firstOfNode[node] = next } else { firstOfNode[node] = nil }
            } else {
                while slots[cursor].nextOfNode >= 0 && slots[cursor].nextOfNode != i { cursor = slots[cursor].nextOfNode }
                if slots[cursor].nextOfNode == i { slots[cursor].nextOfNode = slots[i].nextOfNode }
            }
            slots[i].nextOfNode = -1
        }

        /// Empties slot `i`; returns its fid for the caller to drop outside the lock.
        mutating func release(_ i: Int) -> RemoteFile? {
            unlinkFromRecency(i)
            unlinkFromNode(i)
            index[slots[i].key] = nil
            let file = slots[i].file
            slots[i].file = nil
            free.append(i)
            return file
        }
    }

    private let state: Mutex<State>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        state = Mutex(State(capacity: max(1, capacity)))
    }

    // MARK: Roots

    func root(_ uid: UInt32) -> RemoteFile? { state.withLock { $0.roots[uid] } }

    /// Keeps `file` as `uid`'s root unless another task attached first: returns the root kept
    /// and the fid not needed (to close).
    func setRoot(_ file: RemoteFile, for uid: UInt32) -> (kept: RemoteFile, unused: RemoteFile?) {
        state.withLock { state in
            if let existing = state.roots[uid] { return (existing, file) }
            state.roots[uid] = file
            return (file, nil)
        }
    }

    // MARK: Names

    /// Records that the kernel knows `node` as `name` in `parent` (every entry reply, and a
    /// rename's new name). The same name again changes nothing (and allocates nothing).
    func recordName(_ node: UInt64, parent: UInt64, name: ByteView) {
        let same = state.withLock { $0.names[node]?.equals(parent: parent, name: name) ?? false }
        if same { return }
        let record = NodeName(parent: parent, name: name)
        let replaced = state.withLock { state in state.names.updateValue(record, forKey: node) }
        _ = replaced
    }

    func name(of node: UInt64) -> NodeName? { state.withLock { $0.names[node] } }

    // MARK: Fids

    /// `uid`'s fid for `node`, now the most recently used; nil when it must be walked.
    func file(_ node: UInt64, uid: UInt32) -> RemoteFile? {
        state.withLock { state -> RemoteFile? in
            guard let i = state.index[Key(node: node, uid: uid)] else { return nil }
            if state.newest != i {
                state.unlinkFromRecency(i)
                state.makeNewest(i)
            }
            return state.slots[i].file
        }
    }

    /// Keeps `file` as `uid`'s fid for `node` (unless another task walked it first: then that
    /// one, or with `replacing` this one instead). Returns the fid kept and the fids to drop: the
    /// one not kept, or the least recently used one evicted to make room. Dropping a
    /// `RemoteFile` clunks its fid in the background; a request still using a dropped fid holds
    /// its own reference, so it is clunked after.
    func insert(_ file: RemoteFile, node: UInt64, uid: UInt32, replacing: Bool = false) -> (kept: RemoteFile, dropped: RemoteFile?) {
        state.withLock { state in
            let key = Key(node: node, uid: uid)
            if let i = state.index[key], let existing = state.slots[i].file {
                guard replacing else { return (existing, file) }
                state.slots[i].file = file
                if state.newest != i {
                    state.unlinkFromRecency(i)
                    state.makeNewest(i)
                }
                return (file, existing)
            }
            var evicted: RemoteFile? = nil
            if state.free.isEmpty {
                let victim = state.oldest
                evicted = state.release(victim)
                state.evictions += 1
            }
            let i = state.free.removeLast()
            state.slots[i].key = key
            state.slots[i].file = file
            state.slots[i].nextOfNode = state.firstOfNode[node] ?? -1
            state.firstOfNode[node] = i
            state.index[key] = i
            state.makeNewest(i)
            return (file, evicted)
        }
    }

    /// The kernel forgot `node`: its per-user fids are clunked (in the background, as each
    /// `RemoteFile` goes) and its name is dropped. Safe on the reader thread: dropping a fid
    /// only queues a Tclunk on the connection (its own lock, never this one).
    func forget(_ node: UInt64) {
        state.withLock { state in
            dropFids(of: node, &state)
            state.names[node] = nil
        }
    }

    /// Drops every user's fid for `node` (they are walked again by name when next needed): after
    /// a rename, for servers whose fids name paths.
    func dropFids(of node: UInt64) {
        state.withLock { state in dropFids(of: node, &state) }
    }

    private func dropFids(of node: UInt64, _ state: inout State) {
        while let i = state.firstOfNode[node] {
            // Dropped under the lock: see `forget`.
            _ = state.release(i)
        }
    }

    var count: Int { state.withLock { $0.index.count } }
    var rootCount: Int { state.withLock { $0.roots.count } }
    var nameCount: Int { state.withLock { $0.names.count } }
    var evictions: Int { state.withLock { $0.evictions } }
}
