import Glibc
import NinePTransport
import NinePWire
import Synchronization

/// Descriptors that came with Rlocalgrant replies, by the tag of the reply, until the caller
/// that sent the Tlocalgrant takes its own (docs/LOCALIO.md). The reader thread files them
/// before it wakes the caller; a caller that went away leaves one behind, closed when its tag
/// brings another or when the connection ends.
///
/// It also knows which open file holds the grant of each fid, so that an Rlocalrevoke
/// (`RevocationWatch`) can take the grants it names back from those files.
final class GrantedDescriptors: Sendable {
    private let byTag = Mutex<[UInt16: Int32]>([:])
    private let holders = Mutex<[UInt32: Holder]>([:])
    private let watching = Mutex(false)
    /// The tag of the outstanding Tlocalrevoke (`RevocationWatch`), if any.
    private let pollTag = Mutex<UInt16?>(nil)

    /// The file holding a fid's grant; weak, so that a dropped handle is not kept alive.
    private struct Holder: @unchecked Sendable {
        // @unchecked: `RemoteFile` is Sendable; the weak reference is only read under `holders`' lock.
        weak var file: RemoteFile?
        let id: ObjectIdentifier
    }

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

    /// `frameRead`, plus localio's revocation on the reader thread itself: an Rlocalrevoke
    /// that answers the outstanding poll takes its grants back before the reply is delivered,
    /// so the news does not wait for a task to be scheduled (a busy cooperative pool could
    /// hold it back for as long as it stays busy).
    func frameRead(type: UInt8, tag: UInt16, inbox: DescriptorInbox, frame: UnsafeRawBufferPointer) {
        frameRead(type: type, tag: tag, inbox: inbox)
        guard type == MessageType.rlocalrevoke.rawValue, pollTag.withLock({ $0 == tag }),
              let message = try? RMessage.decode(frame, msize: UInt32(frame.count)),
              case let .localrevoke(list) = message.response
        else { return }
        revoke(fids: Array(list))
    }

    /// The tag of the outstanding Tlocalrevoke, if one is out.
    var outstandingPollTag: UInt16? { pollTag.withLock { $0 } }

    /// The outstanding Tlocalrevoke's tag (nil once its reply is in).
    func polling(tag: UInt16?) {
        pollTag.withLock { $0 = tag }
    }

    /// The descriptor that came with the Rlocalgrant of `tag`, now the caller's.
    func take(tag: UInt16) -> Int32? {
        byTag.withLock { $0.removeValue(forKey: tag) }
    }

    // MARK: Revocation

    /// True the first time only: the session's revocation watch starts with its first grant
    /// (a session that never holds one keeps no Tlocalrevoke outstanding).
    func beginWatching() -> Bool {
        watching.withLock { watching in
            defer { watching = true }
            return !watching
        }
    }

    /// `file` holds the grant of `fid` from now on.
    func register(fid: UInt32, file: RemoteFile) {
        holders.withLock { $0[fid] = Holder(file: file, id: ObjectIdentifier(file)) }
    }

    /// `file` no longer holds the grant of `fid` (closed, dropped, reconnected).
    func unregister(fid: UInt32, file: RemoteFile) {
        let id = ObjectIdentifier(file)
        holders.withLock { holders in
            if holders[fid]?.id == id { holders[fid] = nil }
        }
    }

    /// An Rlocalrevoke named `fids`: the files holding their grants go back to 9P. Returns how
    /// many files held one.
    @discardableResult
    func revoke(fids: [UInt32]) -> Int {
        let files: [RemoteFile] = holders.withLock { holders in
            fids.compactMap { fid in holders.removeValue(forKey: fid)?.file }
        }
        for file in files { file.revokeLocalGrant() }
        return files.count
    }
}
