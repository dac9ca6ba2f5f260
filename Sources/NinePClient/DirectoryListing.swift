import NinePWire

/// The entries of a directory as an AsyncSequence: Treaddir batches are fetched as the loop
/// consumes them. "." and ".." are left out.
///
///     for try await entry in client.readdir("/photos") { print(entry.name) }
public struct DirectoryListing: AsyncSequence, Sendable {
    public typealias Element = DirectoryEntry

    enum Source: Sendable {
        case path(NinePClient, String)
        case open(RemoteFile)
    }

    let source: Source
    let closeWhenDone: Bool

    init(directory: RemoteFile, closeWhenDone: Bool) {
        source = .open(directory)
        self.closeWhenDone = closeWhenDone
    }

    init(client: NinePClient, path: String) {
        source = .path(client, path)
        closeWhenDone = true
    }

    public func makeAsyncIterator() -> Iterator { Iterator(source: source, closeWhenDone: closeWhenDone) }

    public struct Iterator: AsyncIteratorProtocol {
        var source: Source
        let closeWhenDone: Bool
        var directory: RemoteFile? = nil
        var pending: [DirectoryEntry] = []
        var offset: UInt64 = 0
        var finished = false

        init(source: Source, closeWhenDone: Bool) {
            self.source = source
            self.closeWhenDone = closeWhenDone
        }

        public mutating func next() async throws -> DirectoryEntry? {
            while pending.isEmpty {
                if finished { return nil }
                let directory = try await opened()
                let batch = try await directory.readdirBatch(offset: offset)
                if batch.isEmpty {
                    finished = true
                    if closeWhenDone { await directory.close() }
                    return nil
                }
                offset = batch[batch.count - 1].offset
                pending = batch.filter { $0.name != "." && $0.name != ".." }.reversed()
            }
            return pending.popLast()
        }

        private mutating func opened() async throws -> RemoteFile {
            if let directory { return directory }
            switch source {
            case let .open(file):
                directory = file
                return file
            case let .path(client, path):
                let file = try await client.open(path, options: .directory)
                directory = file
                return file
            }
        }
    }
}

extension RemoteFile {
    /// One Treaddir from `offset`: the entries that fit in one message.
    func readdirBatch(offset: UInt64) async throws -> [DirectoryEntry] {
        try checkUsable(.readdir)
        let fid = self.fid
        let count = UInt32(min(ioSize, 256 * 1024))
        do {
            return try await connection.call(.readdir, timeout: client.callTimeout) { (w: inout WireWriter, tag) throws(WireError) in
                try Request.readdir(fid: fid, offset: offset, count: count).encode(tag: tag, into: &w)
            } decode: { response throws(NinePError) in
                guard case let .readdir(entries) = response else { throw .protocolViolation(.readdir) }
                return entries.map { DirectoryEntry(name: $0.name.makeString(), qid: $0.qid, type: $0.type, offset: $0.offset) }
            }
        } catch let error as NinePError {
            throw error.at(path)
        }
    }
}
