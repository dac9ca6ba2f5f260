import NinePClient
import NinePMemory
import Synchronization

/// Open files and directories, by the handle (`fh`) the kernel names them with: each is an opened
/// fid of its own (Tlopen), separate from the node's walked fid.
///
/// At most `capacity` open at once, reserved at start (the dictionary never grows); when full,
/// `insert` refuses and the caller answers ENFILE. Handles are never reused (a 64-bit counter).
final class HandleTable: Sendable {
    private struct State {
        var files: [UInt64: RemoteFile] = [:]
        var next: UInt64 = 1
    }

    private let state = Mutex(State())
    let capacity: Int

    /// `filler`: any file, only to make the table's room resident at start.
    init(capacity: Int, filler: RemoteFile) {
        self.capacity = max(1, capacity)
        state.withLock { $0.files.reserveResident(self.capacity, value: filler) }
    }

    /// The handle of `file`, or nil when the table is full.
    func insert(_ file: RemoteFile) -> UInt64? {
        state.withLock { state in
            guard state.files.count < capacity else { return nil }
            let handle = state.next
            state.next += 1
            state.files[handle] = file
            return handle
        }
    }

    func file(_ handle: UInt64) -> RemoteFile? { state.withLock { $0.files[handle] } }

    func remove(_ handle: UInt64) -> RemoteFile? { state.withLock { $0.files.removeValue(forKey: handle) } }

    var count: Int { state.withLock { $0.files.count } }
}
