import Glibc
import NinePTransport
import NinePWire
import Synchronization

/// Descriptors that came with Rlocalgrant replies, by the tag of the reply, until the caller
/// that sent the Tlocalgrant takes its own (docs/LOCALIO.md). The reader thread files them
/// before it wakes the caller; a caller that went away leaves one behind, closed when its tag
/// brings another or when the connection ends.
final class GrantedDescriptors: Sendable {
    private let byTag = Mutex<[UInt16: Int32]>([:])

    deinit {
        byTag.withLock { for fd in $0.values { close(fd) } }
    }

    /// After the reader has read a whole frame of `type` and `tag`: Rlocalgrant's descriptor
    /// is the first one held; every other descriptor held came with no reason and is closed.
    func frameRead(type: UInt8, tag: UInt16, inbox: DescriptorInbox) {
        guard inbox.count > 0 else { return }
        if type == MessageType.rlocalgrant.rawValue, let fd = inbox.take() {
            let previous = byTag.withLock { $0.updateValue(fd, forKey: tag) }
            if let previous { close(previous) }
        }
        inbox.closeAll()
    }

    /// The descriptor that came with the Rlocalgrant of `tag`, now the caller's.
    func take(tag: UInt16) -> Int32? {
        byTag.withLock { $0.removeValue(forKey: tag) }
    }
}
