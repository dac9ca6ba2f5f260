import CNinePShims
import Glibc
import NinePMemory
import NinePWire
import Synchronization

/// What a fid stands for.
enum FidKind: Equatable {
    /// A file or directory, through an NINEP_O_PATH descriptor (and an open one after Tlopen).
    case file
    /// The result of Txattrwalk: Tread returns the value (or the name list) read at walk time.
    case xattrRead
    /// After Txattrcreate: Twrite collects the value, Tclunk sets it.
    case xattrWrite
}

/// Xattr data held by an xattr fid (allocated only for xattr operations). Pipelined Twrites
/// and the Tclunk of one xattr fid may run on different workers at once, so the value is only
/// touched under its lock: each write appends at exactly the current end or fails, and the
/// clunk seals it, after which a late write fails instead of changing what was set.
final class XattrState: Sendable {
    struct Value {
        var bytes: [UInt8]
        var sealed = false
    }

    let name: [UInt8]
    let expectedSize: Int
    let flags: Int32
    private let value: Mutex<Value>

    init(name: [UInt8], value: [UInt8], expectedSize: Int, flags: Int32) {
        self.name = name
        self.expectedSize = expectedSize
        self.flags = flags
        self.value = Mutex(Value(bytes: value))
    }

    enum AppendFailure: Error { case sealed, misplaced }

    /// Appends `data` if `offset` is the current end and the value stays within its size.
    func append(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(AppendFailure) {
        let failure: AppendFailure? = value.withLock { v in
            if v.sealed { return .sealed }
            guard offset == UInt64(v.bytes.count), v.bytes.count + data.count <= expectedSize else { return .misplaced }
            v.bytes.append(contentsOf: data)
            return nil
        }
        if let failure { throw failure }
    }

    /// Seals the value (no write changes it any more) and lends it to `body`.
    func sealed<R>(_ body: ([UInt8]) -> R) -> R {
        value.withLock { v in
            v.sealed = true
            return body(v.bytes)
        }
    }

    /// Copies up to `count` bytes from `start` to `destination`; returns how many.
    func copy(from start: Int, count: Int, to destination: UnsafeMutableRawPointer?) -> Int {
        value.withLock { v in
            let n = start < v.bytes.count ? min(count, v.bytes.count - start) : 0
            if n > 0, let destination {
                v.bytes.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress! + start, byteCount: n) }
            }
            return n
        }
    }
}

/// One fid's state. Descriptors are closed only when the fid is clunked AND no request still
/// uses them (`references`), so a Tclunk racing a Tread never closes a descriptor under it.
struct FidEntry<Backend: FileSystemBackend> {
    var fid: UInt32 = 0
    var kind: FidKind = .file
    var pathFd: Int32 = -1
    var openFd: Int32 = -1
    var openFlags: Int32 = 0
    /// For an NINEP_O_DIRECT open: the same file opened without NINEP_O_DIRECT, for the misaligned
    /// heads and tails of requests (NINEP_O_DIRECT needs 4096-aligned offsets and lengths).
    var bufferedFd: Int32 = -1
    var qid = Qid(type: 0, version: 0, path: 0)
    var device: UInt64 = 0
    var uid: UInt32 = 0
    /// The fid is its export's root ("..": stays; Tremove: EBUSY).
    var isRoot = false
    /// The export the fid was attached through (walks and clones inherit it): its policy
    /// (read-only, squash, access mode) and root. A reference, not a copy: retained, never
    /// allocated, per borrow. Nil only in a free slot.
    var export: Export<Backend>? = nil
    /// Non-seekable (FIFO, socket, character device): read/write, not pread/pwrite.
    var streaming = false
    var references = 0
    var clunked = false
    var xattr: XattrState? = nil
    /// Set when the NINEP_O_PATH descriptor was given back under descriptor pressure: the kernel's
    /// handle for the inode, to reopen it on next use (see `FidTable.evictIdle`).
    var handle: [UInt8]? = nil
    /// Tick of the last borrow, for least-recently-used eviction.
    var lastUsed: UInt64 = 0

    var isOpen: Bool { openFd >= 0 }
}

/// A borrowed fid: a copy of its entry plus the slot to give back with `FidTable.release`.
struct FidRef<Backend: FileSystemBackend> {
    let slot: Int
    var entry: FidEntry<Backend>
}

/// The fids of one connection, in a table of fixed capacity (`limit`): slots are reused, the
/// fid-to-slot dictionary is reserved up front, so walk/clunk loops do not allocate.
final class FidTable<Backend: FileSystemBackend>: Sendable {
    typealias Failure = FidTableFailure

    private struct State {
        var entries: [FidEntry<Backend>]
        var freeSlots: [Int]
        var slotByFid: [UInt32: Int]
        var tick: UInt64 = 0
    }

    let limit: Int
    /// Closes the handles of fids no request uses any more.
    let backend: Backend
    private let state: AdaptiveMutex<State>

    init(limit: Int, preallocated: Int, backend: Backend) {
        self.limit = limit
        self.backend = backend
        // Reserve a working set up front (part of the connection slot's budget); beyond it
        // the table grows only if memory allows (see `insert`), never shrinks, so a steady
        // walk/clunk loop allocates nothing.
        let initial = min(limit, preallocated)
        var entries = [FidEntry<Backend>]()
        entries.reserveCapacity(initial)
        var freeSlots = [Int]()
        freeSlots.reserveCapacity(initial)
        var slotByFid = [UInt32: Int]()
        slotByFid.reserveCapacity(initial)
        state = AdaptiveMutex(State(entries: entries, freeSlots: freeSlots, slotByFid: slotByFid))
    }

    var count: Int { state.withLock { $0.slotByFid.count } }

    /// Adds `fid` with `entry`'s state, taking one reference for the caller.
    func insert(_ fid: UInt32, _ entry: FidEntry<Backend>) throws(Failure) -> FidRef<Backend> {
        let result: Result<FidRef<Backend>, Failure> = state.withLock { s in
            if s.slotByFid[fid] != nil { return .failure(.fidInUse) }
            var e = entry
            e.fid = fid
            e.references = 1
            e.clunked = false
            let slot: Int
            if let free = s.freeSlots.popLast() {
                slot = free
                s.entries[slot] = e
            } else {
                guard s.entries.count < limit else { return .failure(.tableFull) }
                if s.entries.count == s.entries.capacity || s.slotByFid.count == s.slotByFid.capacity {
                    guard Self.grow(&s, limit: limit) else { return .failure(.outOfMemory) }
                }
                slot = s.entries.count
                s.entries.append(e)
            }
            s.slotByFid[fid] = slot
            return .success(FidRef<Backend>(slot: slot, entry: e))
        }
        return try result.get()
    }

    /// Doubles the table's storage, asking malloc first (Swift would trap on a refusal).
    private static func grow(_ s: inout State, limit: Int) -> Bool {
        let capacity = min(limit, max(16, s.entries.capacity * 2))
        let bytes = capacity * (MemoryLayout<FidEntry<Backend>>.stride + MemoryLayout<Int>.stride + 48)
        guard MemoryProbe.canAllocate(bytes: bytes) else { return false }
        s.entries.reserveCapacity(capacity)
        s.freeSlots.reserveCapacity(capacity)
        s.slotByFid.reserveCapacity(capacity)
        return true
    }

    /// True if `fid` is open on a FIFO, socket or character device.
    func isStreaming(_ fid: UInt32) -> Bool {
        state.withLock { s in
            guard let slot = s.slotByFid[fid] else { return false }
            return s.entries[slot].streaming
        }
    }

    /// Borrows `fid`; pair with `release`.
    func acquire(_ fid: UInt32) -> FidRef<Backend>? {
        state.withLock { s in
            guard let slot = s.slotByFid[fid] else { return nil }
            s.entries[slot].references += 1
            s.tick &+= 1
            s.entries[slot].lastUsed = s.tick
            return FidRef<Backend>(slot: slot, entry: s.entries[slot])
        }
    }

    /// Gives a borrowed fid back; closes its descriptors if it was clunked meanwhile.
    func release(_ ref: FidRef<Backend>) {
        let toClose: (Int32, Int32, Int32)? = state.withLock { s in
            s.entries[ref.slot].references -= 1
            return Self.reclaimIfUnused(&s, slot: ref.slot)
        }
        if let (a, b, c) = toClose { closeDescriptors(a, b, c) }
    }

    /// Applies `body` to the live entry (e.g. after Tlopen) and refreshes `ref`.
    func update(_ ref: inout FidRef<Backend>, _ body: (inout FidEntry<Backend>) -> Void) {
        ref.entry = state.withLock { s in
            body(&s.entries[ref.slot])
            return s.entries[ref.slot]
        }
    }

    /// Removes `fid`; its descriptors close when the last borrower releases it.
    func clunk(_ fid: UInt32) -> Bool {
        let outcome: (found: Bool, close: (Int32, Int32, Int32)?) = state.withLock { s in
            guard let slot = s.slotByFid.removeValue(forKey: fid) else { return (false, nil) }
            s.entries[slot].clunked = true
            return (true, Self.reclaimIfUnused(&s, slot: slot))
        }
        if let (a, b, c) = outcome.close { closeDescriptors(a, b, c) }
        return outcome.found
    }

    /// Gives back the NINEP_O_PATH descriptors of up to `fraction` of the idle fids (not borrowed,
    /// not open, not the root, not a symlink, file still linked), least recently used first,
    /// keeping the backend's handle to reopen each on next use. Returns how many were closed.
    func evictIdle(fraction: Double) -> Int {
        var closed: [Int32] = []
        state.withLock { s in
            var candidates: [(UInt64, Int)] = []
            for slot in s.slotByFid.values {
                let e = s.entries[slot]
                guard e.kind == .file && e.references == 0 else { continue }
                if e.openFd >= 0 {
                    // An open fid serves path operations through its open descriptor too
                    // (fstat, /proc/self/fd reopen, *at calls on directories): no handle needed.
                    if e.pathFd >= 0 && e.pathFd != e.openFd {
                        closed.append(e.pathFd)
                        s.entries[slot].pathFd = e.openFd
                    }
                } else if e.pathFd >= 0 && !e.isRoot && !e.qid.isSymlink {
                    candidates.append((e.lastUsed, slot))
                }
            }
            candidates.sort { $0.0 < $1.0 }
            let wanted = max(1, Int(Double(candidates.count) * fraction))
            for (_, slot) in candidates.prefix(wanted) {
                let fd = s.entries[slot].pathFd
                let e = s.entries[slot]
                guard let handle = backend.evictionHandle(of: fd, device: e.device, isDirectory: e.qid.isDirectory) else { continue }
                s.entries[slot].handle = handle
                s.entries[slot].pathFd = -1
                closed.append(fd)
            }
        }
        for fd in closed { backend.close(fd) }
        return closed.count
    }

    /// Installs a reopened descriptor for an evicted fid; returns the one to use (another
    /// request may have reopened it first, then `fd` is closed).
    func restore(_ ref: inout FidRef<Backend>, fd: Int32) -> Int32 {
        var keep = fd
        ref.entry = state.withLock { s in
            if s.entries[ref.slot].pathFd >= 0 {
                keep = -1
            } else {
                s.entries[ref.slot].pathFd = fd
            }
            return s.entries[ref.slot]
        }
        if keep < 0 { backend.close(fd) }
        return ref.entry.pathFd
    }

    /// Clunks every fid (Tversion, connection close), slot by slot: no list is built, so
    /// closing a connection allocates nothing.
    func clunkAll() {
        var slot = 0
        while true {
            let next: (done: Bool, fid: UInt32?) = state.withLock { s in
                guard slot < s.entries.count else { return (true, nil) }
                let fid = s.entries[slot].fid
                let live = !s.entries[slot].clunked && s.slotByFid[fid] == slot
                return (false, live ? fid : nil)
            }
            if next.done { return }
            if let fid = next.fid { _ = clunk(fid) }
            slot += 1
        }
    }

    private static func reclaimIfUnused(_ s: inout State, slot: Int) -> (Int32, Int32, Int32)? {
        let e = s.entries[slot]
        guard e.clunked && e.references == 0 else { return nil }
        s.entries[slot] = FidEntry<Backend>()
        s.freeSlots.append(slot)
        return (e.pathFd, e.openFd, e.bufferedFd)
    }

    private func closeDescriptors(_ a: Int32, _ b: Int32, _ c: Int32) {
        if a >= 0 { backend.close(a) }
        if b >= 0 && b != a { backend.close(b) }
        if c >= 0 { backend.close(c) }
    }
}

/// Why a fid could not be added.
enum FidTableFailure: Error {
    case unknownFid
    case fidInUse
    case tableFull
    /// The table is full of its preallocated slots and memory to grow it was refused.
    case outOfMemory
}
