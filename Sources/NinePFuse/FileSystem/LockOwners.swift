import NinePClient
import Synchronization

/// The fids POSIX record locks are held through: one per (node, FUSE lock owner).
///
/// POSIX holds a record lock per process (the kernel's lock owner: its table of descriptors),
/// where the servers hold one per fid (ninepd takes open file description locks, diod locks the
/// fid's descriptor). Sending each owner's locks on a file through one fid of its own makes
/// them the owner's: two descriptors of one process are one owner (its locks through either
/// merge, never conflict), a parent and child sharing a descriptor are two. Clunking the fid
/// drops every lock held through it, which is what POSIX asks of a close by the owner (FLUSH).
///
/// At most `capacity` at once, reserved at start (the dictionary never grows): a lock operation
/// of an owner that has its fid takes a lock and a lookup, nothing allocated. When full, a new
/// owner's lock is refused (ENOLCK) until owners close the files they lock.
final class LockOwners: Sendable {
    struct Key: Hashable {
        var node: UInt64
        var owner: UInt64
    }

    struct Entry {
        var file: RemoteFile
        /// The handle the owner first locked through: if FLUSH never comes (the kernel stops
        /// sending it once answered ENOSYS), its RELEASE gives the fid back instead.
        var handle: UInt64
    }

    private let entries: Mutex<[Key: Entry]>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        var table: [Key: Entry] = [:]
        table.reserveCapacity(self.capacity)
        entries = Mutex(table)
    }

    /// The owner's lock fid on `node`, if it has one.
    func file(node: UInt64, owner: UInt64) -> RemoteFile? {
        entries.withLock { $0[Key(node: node, owner: owner)]?.file }
    }

    enum Insertion {
        /// `file` is now the owner's lock fid.
        case inserted
        /// The owner got one meanwhile (two of its threads locking at once): use it, give `file` back.
        case existing(RemoteFile)
        case full
    }

    func insert(_ file: RemoteFile, node: UInt64, owner: UInt64, handle: UInt64) -> Insertion {
        entries.withLock { table in
            let key = Key(node: node, owner: owner)
            if let present = table[key] { return .existing(present.file) }
            guard table.count < capacity else { return .full }
            table[key] = Entry(file: file, handle: handle)
            return .inserted
        }
    }

    /// The owner closed a descriptor of `node`: its fid, to clunk (nil when it locked nothing).
    func remove(node: UInt64, owner: UInt64) -> RemoteFile? {
        entries.withLock { $0.removeValue(forKey: Key(node: node, owner: owner))?.file }
    }

    /// One fid first locked through `handle`, removed (call until nil). Only finds any when
    /// FLUSH did not come for the owner's close.
    func removeOne(handle: UInt64) -> RemoteFile? {
        entries.withLock { table in
            guard !table.isEmpty, let index = table.firstIndex(where: { $0.value.handle == handle }) else { return nil }
            return table.remove(at: index).value.file
        }
    }

    var count: Int { entries.withLock { $0.count } }
}
