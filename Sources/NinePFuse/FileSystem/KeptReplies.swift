import NinePClient
import Synchronization

/// By worker slot, the 9P reply whose data that slot's FUSE reply is being written from (the
/// slot's `payload`): a READ answered from a read-ahead (`ReadAhead`), or a large READ read
/// with `RemoteFile.readKept`. Its request slot is given back once the FUSE reply is written
/// or abandoned (`replied`), so no READ's data is copied in this process.
///
/// One place per worker, fixed at start: nothing is allocated per READ.
final class KeptReplies: Sendable {
    private let kept: Mutex<[KeptRead?]>

    init(workers: Int) {
        kept = Mutex([KeptRead?](repeating: nil, count: max(1, workers)))
    }

    /// The reply in `slot` goes on with the first `count` bytes of `read`'s data.
    func attach(_ read: KeptRead, count: Int, to slot: FuseSlot) {
        slot.payload = count > 0 ? UnsafeRawBufferPointer(rebasing: read.data[0..<count]) : nil
        let previous = kept.withLock { kept in
            defer { kept[slot.index] = read }
            return kept[slot.index]
        }
        // Never expected (every reply is followed by `replied`): not leaked if it happens.
        previous?.release()
    }

    /// The reply of the worker with `slot` is written (or abandoned).
    func replied(_ slot: FuseSlot) {
        slot.payload = nil
        let read = kept.withLock { kept in
            defer { kept[slot.index] = nil }
            return kept[slot.index]
        }
        read?.release()
    }
}
