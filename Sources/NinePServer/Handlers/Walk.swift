import CNinePShims
import Glibc
import NinePWire

extension Worker {
    /// Twalk: one component at a time, relative to the parent's NINEP_O_PATH descriptor, with
    /// O_NOFOLLOW (a symlink is returned, never followed, and cannot be walked through).
    /// ".." at the export root stays at the root. nwname = 0 clones the fid. A walk that fails
    /// after the first step returns the qids so far and creates no fid.
    ///
    /// An open fid cannot be walked onto itself (walk(5): "fid must not have been opened"):
    /// its open descriptor would stay on the old file under the new qid. Walking or cloning
    /// an open fid into a new fid is allowed, as QEMU allows it, because the Linux client
    /// does it: v9fs_fid_find falls back to the open fids of the inode when the dentry has
    /// none for the user, and clones or walks from what it found.
    func walk(
        _ connection: ServerConnection<Backend>, tag: UInt16, fid: UInt32, newfid: UInt32, names: WalkNames, into w: inout WireWriter
    ) throws(ServerErrno) -> Int {
        try withFid(connection, fid) { (ref: inout FidRef<Backend>) throws(ServerErrno) -> Int in
            guard ref.entry.kind == .file, let export = ref.entry.export else { throw ServerErrno.badFid }
            if ref.entry.isOpen && newfid == fid && names.count > 0 { throw ServerErrno.badFid }
            if newfid != fid, let existing = connection.fids.acquire(newfid) {
                connection.fids.release(existing)
                throw ServerErrno.badFid
            }
            do {
                try w.beginRwalk(tag: tag)
            } catch {
                throw ServerErrno(LinuxErrno.ENOMEM)
            }
            var current = ref.entry.pathFd
            var ownsCurrent = false
            var qid = ref.entry.qid
            var device = ref.entry.device
            var atRoot = ref.entry.isRoot
            var walked = 0
            var failure: ServerErrno? = nil
            for name in names {
                let next: Int32
                do throws(FileSystemError) {
                    if name.equals("..") {
                        if atRoot {
                            next = try descriptor { () throws(FileSystemError) -> Int32 in try backend.duplicate(current) }
                        } else {
                            next = try descriptor { () throws(FileSystemError) -> Int32 in try backend.lookupParent(current) }
                            if !isInsideExport(next, export) {
                                backend.close(next)
                                throw FileSystemError(LinuxErrno.EACCES)
                            }
                        }
                    } else {
                        let cName = try componentName(name, slot: 0).get()
                        next = try descriptor { () throws(FileSystemError) -> Int32 in try backend.lookup(current, cName) }
                    }
                } catch {
                    failure = error
                    break
                }
                let st: statx
                do throws(ServerErrno) {
                    st = try stat(next)
                } catch {
                    backend.close(next)
                    failure = error
                    break
                }
                if ownsCurrent { backend.close(current) }
                current = next
                ownsCurrent = true
                qid = server.qids.qid(st)
                device = st.deviceID
                atRoot = export.backend.isExportRoot(st)
                do { try w.qid(qid) } catch { failure = ServerErrno(LinuxErrno.ENOMEM); break }
                walked += 1
            }
            if let failure {
                if ownsCurrent { backend.close(current) }
                if walked == 0 { throw failure }
                return w.finishRwalk(count: walked)
            }
            if names.count == 0 {
                if newfid == fid { return w.finishRwalk(count: 0) }
                let source = ref.entry.pathFd
                current = try descriptor { () throws(FileSystemError) -> Int32 in try backend.duplicate(source) }
                ownsCurrent = true
            }
            if newfid == fid {
                var old: Int32 = -1
                connection.fids.update(&ref) { entry in
                    old = entry.pathFd
                    entry.pathFd = current
                    entry.qid = qid
                    entry.device = device
                    entry.isRoot = atRoot
                }
                if old >= 0 { backend.close(old) }
            } else {
                var entry = FidEntry<Backend>()
                entry.pathFd = current
                entry.qid = qid
                entry.device = device
                entry.uid = ref.entry.uid
                entry.isRoot = atRoot
                entry.export = export
                do throws(FidTableFailure) {
                    let created = try connection.fids.insert(newfid, entry)
                    connection.fids.release(created)
                } catch {
                    backend.close(current)
                    throw Self.fidError(for: error)
                }
            }
            return w.finishRwalk(count: walked)
        }
    }

    /// True when the directory `fd` lies inside `export`: climbing ".." reaches its root
    /// before the top of the host's tree. Guards ".." against directories moved out of the
    /// export while a client held a fid in them.
    func isInsideExport(_ handle: Int32, _ export: Export<Backend>) -> Bool {
        guard var current = try? backend.duplicate(handle) else { return false }
        defer { backend.close(current) }
        for _ in 0..<4096 {
            guard let st = try? stat(current) else { return false }
            if export.backend.isExportRoot(st) { return true }
            guard let parent = try? backend.lookupParent(current) else { return false }
            guard let parentStat = try? stat(parent) else {
                backend.close(parent)
                return false
            }
            if parentStat.stx_ino == st.stx_ino && parentStat.deviceID == st.deviceID {
                backend.close(parent)
                return false  // reached "/" without meeting the export root
            }
            backend.close(current)
            current = parent
        }
        return false
    }
}
