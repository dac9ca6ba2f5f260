import Glibc
import NinePClient
import NinePWire

/// READDIRPLUS: a READDIR whose entries each carry what a LOOKUP of them would answer (a node,
/// its lookup counted, attributes, timeouts), so `ls -l` of a directory needs no LOOKUP and
/// GETATTR per entry. 9P2000.L has no listing with attributes: each entry costs a Twalk from the
/// directory's node fid and a Tgetattr of the walked fid, the round trips a LOOKUP costs, less
/// the kernel's LOOKUP and GETATTR. By default one entry after another, which allocates nothing
/// (as LOOKUP); with `-o readdirplus_window=N` N entries at a time, in flight together on the
/// connection (an `async let` each: their task memory comes from malloc, about 7 allocations an
/// entry measured by bench-fuse-allocs).
///
/// The kernel asks for it (FUSE_READDIRPLUS_AUTO) when a listing starts and then only while the
/// caller looks the entries up (its stat of an entry made by READDIRPLUS, or a LOOKUP, advises
/// the directory): a listing of names alone (find, ls, rm -r) stays plain READDIR after its
/// first reply, and does not give every entry a node and a fid on the server.
///
/// "." and ".." get node id 0 (the kernel takes no lookup for them: fs/fuse/readdir.c skips
/// them, and a counted lookup would never be forgotten). So does an entry that cannot be
/// resolved (removed meanwhile, the node table full, the call interrupted): node id 0 tells the
/// kernel only that there are no attributes for it; the name is listed and a stat LOOKUPs it.
extension NinePFileSystem {

    func readdirplus(_ header: FuseInHeader, _ r: FuseReadIn, unique: UInt64, into out: UnsafeMutableRawBufferPointer) async throws -> Int {
        let directory = try handle(r.fh)
        var reply = try FuseReply(into: out, unique: unique)
        var packer = FuseDirentPacker(continuing: reply.writer, size: Int(r.size))
        let first = packer.writer.offset
        // A 9P entry takes 24 bytes and its name, a direntplus 152 and its name padded: a
        // quarter of the room asked for is about what fits (what does not is read again next time).
        let asked = max(1024, Int(r.size) / 4)
        _ = try await directory.readDirectory(at: r.offset, count: asked) { entry in
            packer.reservePlus(ino: entry.qid.path, offset: entry.offset, type: direntType(entry), name: entry.name) != nil
        }
        reply.writer = packer.writer
        let end = packer.writer.offset
        // A caller with attaches of its own looks entries up with its own fids (the server
        // checks its permissions): its entries stay without attributes, each is LOOKUPed.
        if !callsAsItself(header), let parent = nodes.file(header.nodeID) {
            let entries = DirentplusEntries(buffer: out)
            let window = options.readdirplusWindow
            var position = first
            while position < end {
                if window <= 1 {
                    let next = FuseDirentPacker.plusEntry(in: UnsafeRawBufferPointer(out), at: position).next
                    await resolveEntry(parent, header.nodeID, entries, at: position)
                    position = next
                } else {
                    position = await resolveEntries(parent, header.nodeID, entries, from: position, end: end, left: window)
                }
            }
        }
        return reply.finish()
    }

    /// Resolves up to `left` entries from `position`, all at once (one `async let` each: its
    /// frame comes from the worker task's allocator); returns where the next entry starts.
    private func resolveEntries(_ parent: RemoteFile, _ parentID: UInt64, _ entries: DirentplusEntries, from position: Int, end: Int, left: Int) async -> Int {
        guard position < end, left > 0 else { return position }
        let next = FuseDirentPacker.plusEntry(in: UnsafeRawBufferPointer(entries.buffer), at: position).next
        async let this: Void = resolveEntry(parent, parentID, entries, at: position)
        let after = await resolveEntries(parent, parentID, entries, from: next, end: end, left: left - 1)
        await this
        return after
    }

    /// One entry's lookup, as LOOKUP does it (a node already holding the file takes the lookup
    /// without a new object; the walked fid goes), written into its `fuse_entry_out`. Any
    /// failure leaves node id 0 there and no lookup counted.
    private func resolveEntry(_ parent: RemoteFile, _ parentID: UInt64, _ entries: DirentplusEntries, at position: Int) async {
        let name = FuseDirentPacker.plusEntry(in: UnsafeRawBufferPointer(entries.buffer), at: position).name
        if name.equals(".") || name.equals("..") { return }
        let child: WalkedFid
        do {
            child = try await parent.walkFid(name)
        } catch {
            return
        }
        let attributes: FileAttributes
        do {
            attributes = try await parent.stat(child)
        } catch {
            await parent.discard(child)
            return
        }
        let id: UInt64
        if let known = nodes.recordLookup(of: child.qid) {
            await parent.discard(child)
            id = known
        } else {
            do {
                id = try await remembered(parent.adopt(child, name: name))
            } catch {
                return
            }
        }
        userFids?.recordName(id, parent: parentID, name: name)
        FuseDirentPacker.fillEntry(answered(entryOut(id, attributes)), in: entries.buffer, at: position)
    }

    /// Gives back the lookups a READDIRPLUS reply counted when the kernel did not take it.
    func undoDirentplus(_ reply: UnsafeRawBufferPointer, length: Int) -> Int {
        var position = FuseOutHeader.wireSize
        var undone = 0
        while position + FuseEntryOut.wireSize + FuseDirentPacker.direntHeaderSize <= length {
            let nodeID = UInt64(littleEndian: reply.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            if nodeID != 0 {
                undone += 1
                let gone = nodes.forget(nodeID, count: 1)
                if gone != nil { forgotten(nodeID) }
            }
            position = FuseDirentPacker.plusEntry(in: reply, at: position).next
        }
        return undone
    }
}

/// The reply buffer of one READDIRPLUS, shared with the tasks resolving its entries.
///
/// Safe to send (why the unchecked conformance holds): each task writes only its own entry's
/// `fuse_entry_out` (disjoint byte ranges, found from the names and lengths written before any
/// task starts, which no task changes), reads only its own entry's name, and all of them end
/// (structured `async let`) before the request's worker touches the buffer again.
struct DirentplusEntries: @unchecked Sendable {
    let buffer: UnsafeMutableRawBufferPointer
}
