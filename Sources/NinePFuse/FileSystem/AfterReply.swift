import NinePClient
import Synchronization

/// Work a request leaves for its worker to do once the reply is written: 9P calls whose
/// answer the kernel does not wait for. A RELEASE's Tclunk, sent without waiting for Rclunk
/// (the kernel sends RELEASE in the background and nothing it does waits for the clunk: FLUSH
/// has already dropped the closer's locks, and an UNLINK after a close is right on the server
/// either way), and the spare clone a CREATE makes for the next CREATE in its directory
/// (`NodeTable.takeSpare`), for which the worker waits, busy as it would be with a request;
/// the others read /dev/fuse.
///
/// One entry per worker, written and taken only by that worker's task (the Mutex is only
/// what makes that checkable); fixed at start, so nothing is allocated per request.
final class AfterReplyWork: Sendable {
    struct Work {
        /// A released handle's fid, to clunk.
        var close: RemoteFile? = nil
        /// A directory node to make a spare clone for (0: none).
        var spareFor: UInt64 = 0
    }

    private let pending: Mutex<[Work]>

    init(workers: Int) {
        pending = Mutex(Array(repeating: Work(), count: max(1, workers)))
    }

    func close(_ file: RemoteFile, worker: Int) {
        pending.withLock { $0[worker].close = file }
    }

    func makeSpare(for directory: UInt64, worker: Int) {
        pending.withLock { $0[worker].spareFor = directory }
    }

    /// The worker's work, taken.
    func take(_ worker: Int) -> Work {
        pending.withLock { pending in
            let work = pending[worker]
            pending[worker] = Work()
            return work
        }
    }
}

extension NinePFileSystem {
    /// Runs what the worker's last request left for after its reply (see `AfterReplyWork`).
    func runAfterReply(_ worker: Int) async {
        let work = afterReply.take(worker)
        if let file = work.close { file.closeWithoutWaiting() }
        if work.spareFor != 0 { await makeSpare(for: work.spareFor) }
    }

    /// RELEASE and RELEASEDIR: the handle goes now (a later request naming it gets EBADF, and
    /// an UNLINK no longer walks a created node for it); its fid is clunked after the reply.
    func releaseHandle(_ fh: UInt64, node: UInt64, worker: Int) {
        passthrough.released(fh)
        nodes.released(node, handle: fh)
        if let file = handles.remove(fh) { afterReply.close(file, worker: worker) }
    }

    /// A spare clone of the directory's fid for its next CREATE, unless it has one or all
    /// spares are given out. A failure only means the next CREATE clones for itself.
    func makeSpare(for directoryID: UInt64) async {
        guard let directory = nodes.wantsSpare(directoryID) else { return }
        guard let spare = try? await directory.clone() else { return }
        if let unused = nodes.putSpare(directoryID, spare, of: directory) { await unused.close() }
    }
}
