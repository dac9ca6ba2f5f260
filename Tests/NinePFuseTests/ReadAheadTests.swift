import Glibc
@testable import NinePFuse
import NinePWire
import Testing

/// `ReadAhead` driven by the fake kernel against ninepd's library: sequential READs are served
/// from lanes byte for byte, and a change made through the mount between two READs (a WRITE, a
/// truncating SETATTR) is what the next READ sees, never the data read ahead before it.
@Suite("FUSE read-ahead (fake kernel)")
struct ReadAheadTests {
    /// 64 KiB: the smallest READ that starts a read-ahead, and within the fake kernel's msize.
    static let chunk = ReadAhead.minimumSize

    /// The fake kernel's server is in this process, so localio would grant its files and they
    /// would be read with pread, not 9P: read-ahead is for 9P reads.
    static func kernel() async throws -> FakeKernel {
        var options = NinePFileSystemOptions()
        options.passthrough = .off
        return try await FakeKernel(options: options)
    }

    /// A file of `size` bytes from a seeded generator, written on the server.
    static func content(_ size: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<size).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    static func put(_ bytes: [UInt8], at path: String) throws {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        defer { Glibc.close(fd) }
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        #expect(n == bytes.count)
    }

    /// A fake kernel, a file `name` of `size` seeded bytes on its server, looked up and opened.
    struct Opened {
        let kernel: FakeKernel
        let data: [UInt8]
        let node: UInt64
        let fh: UInt64
    }

    static func opened(_ name: String, size: Int, seed: UInt64, flags: Int32 = O_RDONLY) async throws -> Opened {
        let kernel = try await Self.kernel()
        let data = Self.content(size, seed: seed)
        try Self.put(data, at: kernel.server(name))
        let entry = try await kernel.lookup(name)
        return Opened(kernel: kernel, data: data, node: entry.nodeID, fh: try await kernel.open(entry.nodeID, flags: flags))
    }

    func read(_ kernel: FakeKernel, node: UInt64, fh: UInt64, offset: Int, size: Int) async -> FakeKernel.Reply {
        await kernel.send(.read, node: node, KernelBytes.struct_(FuseReadIn(fh: fh, offset: UInt64(offset), size: UInt32(size))))
    }

    /// Reads the first two chunks through `fh` (they must match `data`), which makes the handle
    /// sequential, and waits until the read-ahead of the third is in.
    func readTwoChunksAhead(_ kernel: FakeKernel, node: UInt64, fh: UInt64, _ data: [UInt8]) async throws -> ReadAhead {
        for offset in [0, Self.chunk] {
            let reply = await read(kernel, node: node, fh: fh, offset: offset, size: Self.chunk)
            #expect(reply.body == Array(data[offset..<(offset + Self.chunk)]))
        }
        let readAhead = try #require(kernel.fileSystem.readAhead)
        try await waitUntilReady(readAhead)
        return readAhead
    }

    /// Waits (at most 10 s) until the read-ahead's data is in.
    func waitUntilReady(_ readAhead: ReadAhead) async throws {
        for _ in 0..<1000 where readAhead.readyLanes == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(readAhead.readyLanes > 0)
    }

    @Test func sequentialReadsAreServedFromTheReadAheadByteForByte() async throws {
        let file = try await Self.opened("seq.bin", size: 40 * Self.chunk + 1234, seed: 1)
        let (kernel, data, fh) = (file.kernel, file.data, file.fh)
        let readAhead = try #require(kernel.fileSystem.readAhead)
        var offset = 0
        var replies = 0
        while true {
            let reply = await read(kernel, node: file.node, fh: fh, offset: offset, size: Self.chunk)
            #expect(reply.error == 0)
            #expect(reply.body == Array(data[offset..<min(data.count, offset + Self.chunk)]), "at \(offset)")
            replies += 1
            offset += reply.body.count
            if reply.body.count < Self.chunk || replies > 100 { break }
        }
        #expect(offset == data.count)
        // The first two READs are read by themselves (the second is the first seen to follow
        // one); every later one was read ahead.
        #expect(readAhead.served.load(ordering: .relaxed) >= replies - 3)
        #expect(readAhead.started.load(ordering: .relaxed) >= replies - 3)
        let release = await kernel.send(.release, node: file.node, KernelBytes.struct_(FuseReleaseIn(fh: fh)))
        #expect(release.error == 0)
        // Every kept 9P request slot is given back.
        for _ in 0..<500 where kernel.client.tagsInUse > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(kernel.client.tagsInUse == 0)
    }

    @Test func threeReadsAheadAndLanesPastTheEndAreGivenBackWhenTheReaderStartsOver() async throws {
        let file = try await Self.opened("loop.bin", size: 4 * Self.chunk, seed: 6)
        let (kernel, data, fh) = (file.kernel, file.data, file.fh)
        let readAhead = try await readTwoChunksAhead(kernel, node: file.node, fh: fh, data)
        // The next three READs are asked of the server (the third past the end: 0 bytes).
        let depth = Int(ReadAhead.depth)
        #expect(readAhead.laneCount >= depth)
        for _ in 0..<1000 where readAhead.readyLanes < depth { try await Task.sleep(for: .milliseconds(10)) }
        #expect(readAhead.readyLanes == depth, "\(readAhead.readyLanes) READs read ahead, not \(depth)")
        // To the end: the lanes then hold reads past it (0 bytes), which nobody will ask for.
        for offset in [2 * Self.chunk, 3 * Self.chunk] {
            let reply = await read(kernel, node: file.node, fh: fh, offset: offset, size: Self.chunk)
            #expect(reply.body == Array(data[offset..<(offset + Self.chunk)]))
        }
        for _ in 0..<1000 where readAhead.readyLanes < depth { try await Task.sleep(for: .milliseconds(10)) }
        #expect(readAhead.readyLanes == depth)
        // Back to the start, the handle still open: the lanes past the end, and their 9P
        // request slots, are given back (they used to stay until the handle was released).
        let again = await read(kernel, node: file.node, fh: fh, offset: 0, size: Self.chunk)
        #expect(again.body == Array(data[0..<Self.chunk]))
        #expect(readAhead.readyLanes == 0, "\(readAhead.readyLanes) lanes still hold reads past the end")
        for _ in 0..<500 where kernel.client.tagsInUse > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(kernel.client.tagsInUse == 0)
    }

    @Test func mixedReadsAreRightWhateverTheLanesHold() async throws {
        let file = try await Self.opened("mixed.bin", size: 24 * Self.chunk, seed: 2)
        let (kernel, data, fh) = (file.kernel, file.data, file.fh)
        var random: UInt64 = 42
        func next(_ bound: Int) -> Int {
            random = random &* 6364136223846793005 &+ 1442695040888963407
            return Int((random >> 33) % UInt64(bound))
        }
        var offset = 0
        for step in 0..<300 {
            // Runs of sequential READs of one size, broken by jumps and by smaller or larger
            // READs at the offset a lane holds.
            let size: Int
            switch next(6) {
            case 0: offset = next(data.count); size = Self.chunk
            case 1: size = 1 + next(Self.chunk)
            case 2: size = Self.chunk + next(Self.chunk)
            default: size = Self.chunk
            }
            let reply = await read(kernel, node: file.node, fh: fh, offset: offset, size: size)
            let expected = offset < data.count ? Array(data[offset..<min(data.count, offset + size)]) : []
            #expect(reply.error == 0 && reply.body == expected, "step \(step): \(size) bytes at \(offset)")
            offset += reply.body.count
            if offset >= data.count { offset = 0 }
        }
        #expect(kernel.fileSystem.readAhead!.served.load(ordering: .relaxed) > 0)
    }

    @Test func aWriteBetweenTwoReadsIsSeenByTheNext() async throws {
        let file = try await Self.opened("w.bin", size: 8 * Self.chunk, seed: 3, flags: O_RDWR)
        let (kernel, data, fh) = (file.kernel, file.data, file.fh)
        // The READ at 2 chunks is read ahead and in; then a WRITE into it.
        let readAhead = try await readTwoChunksAhead(kernel, node: file.node, fh: fh, data)
        let patch = Array("written between two reads".utf8)
        let at = 2 * Self.chunk + 1000
        let write = await kernel.send(.write, node: file.node, KernelBytes.struct_(FuseWriteIn(fh: fh, offset: UInt64(at), size: UInt32(patch.count))) + patch)
        #expect(write.error == 0)
        var expected = Array(data[(2 * Self.chunk)..<(3 * Self.chunk)])
        expected.replaceSubrange(1000..<(1000 + patch.count), with: patch)
        let servedBefore = readAhead.served.load(ordering: .relaxed)
        let reply = await read(kernel, node: file.node, fh: fh, offset: 2 * Self.chunk, size: Self.chunk)
        #expect(reply.error == 0 && reply.body == expected)
        #expect(readAhead.served.load(ordering: .relaxed) == servedBefore)
        #expect(readAhead.dropped.load(ordering: .relaxed) >= 1)
        // A write through another handle of the node is seen too.
        let other = try await kernel.open(file.node, flags: O_RDWR)
        _ = await read(kernel, node: file.node, fh: fh, offset: 3 * Self.chunk, size: Self.chunk)
        try await waitUntilReady(readAhead)
        let second = await kernel.send(.write, node: file.node, KernelBytes.struct_(FuseWriteIn(fh: other, offset: UInt64(4 * Self.chunk), size: UInt32(patch.count))) + patch)
        #expect(second.error == 0)
        let after = await read(kernel, node: file.node, fh: fh, offset: 4 * Self.chunk, size: Self.chunk)
        #expect(Array(after.body.prefix(patch.count)) == patch)
        #expect(Array(after.body.dropFirst(patch.count)) == Array(data[(4 * Self.chunk + patch.count)..<(5 * Self.chunk)]))
    }

    @Test func aTruncateBetweenTwoReadsIsSeenByTheNext() async throws {
        let file = try await Self.opened("t.bin", size: 6 * Self.chunk, seed: 4, flags: O_RDWR)
        let (kernel, data, fh) = (file.kernel, file.data, file.fh)
        _ = try await readTwoChunksAhead(kernel, node: file.node, fh: fh, data)
        var truncate = FuseSetattrIn()
        truncate.valid = [.size, .fh]
        truncate.fh = fh
        truncate.size = UInt64(2 * Self.chunk + 5)
        let setattr = await kernel.send(.setattr, node: file.node, KernelBytes.struct_(truncate))
        #expect(setattr.error == 0)
        let reply = await read(kernel, node: file.node, fh: fh, offset: 2 * Self.chunk, size: Self.chunk)
        #expect(reply.error == 0 && reply.body == Array(data[(2 * Self.chunk)..<(2 * Self.chunk + 5)]))
    }

    @Test func onlyTheHandleThatReadsAheadIsServed() async throws {
        let file = try await Self.opened("h.bin", size: 6 * Self.chunk, seed: 5)
        let (kernel, data, first) = (file.kernel, file.data, file.fh)
        let readAhead = try await readTwoChunksAhead(kernel, node: file.node, fh: first, data)
        // Opening the node again drops it (an open may come with O_TRUNC's SETATTR before it).
        let second = try await kernel.open(file.node)
        #expect(readAhead.readyLanes == 0)
        let served = readAhead.served.load(ordering: .relaxed)
        let reply = await read(kernel, node: file.node, fh: second, offset: 2 * Self.chunk, size: Self.chunk)
        #expect(reply.body == Array(data[(2 * Self.chunk)..<(3 * Self.chunk)]))
        #expect(readAhead.served.load(ordering: .relaxed) == served)
    }

    @Test func noReadAheadWithCacheNone() async throws {
        var options = NinePFileSystemOptions()
        options.cache = .none
        let kernel = try await FakeKernel(options: options)
        #expect(kernel.fileSystem.readAhead == nil)
    }
}
