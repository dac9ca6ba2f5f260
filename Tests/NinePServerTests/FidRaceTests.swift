import CNinePShims
import Glibc
import NinePTestSupport
import NinePWire
import Testing

/// Issue 12, class 6: requests pipelined on one fid run on several workers at once, and state a
/// fid shares (a directory descriptor's position, an xattr fid's value) must stay right by
/// design. Each test pipelines many requests on one fid, round after round; before the fix,
/// concurrent Treaddirs moved one lseek position under each other and xattr Twrites appended to
/// one array from two threads.
@Suite struct FidRaceTests {
    /// Names of the entries of one Rreaddir, or a description of what came instead.
    static func names(_ message: RMessage) -> [String] {
        switch message.response {
        case let .readdir(entries): entries.map { $0.name.makeString() }
        case let .lerror(code): ["Rlerror \(code)"]
        default: ["\(message.response.type)"]
        }
    }

    @Test func pipelinedReaddirsOnOneFidEachReadFromTheirOwnOffset() throws {
        let s = try TestServer { $0.workerThreads = 4 }
        defer { s.shutdown() }
        makeDirectory(s("d"))
        for index in 0..<300 { makeFile(s("d/entry-\(index)-" + String(repeating: "n", count: index % 40))) }
        let c = try s.session()
        try c.walk(0, 1, ["d"])
        try c.lopen(1, OpenFlags.readOnly)
        // What one Treaddir alone answers at a few offsets (cookies of the listing itself).
        let count: UInt32 = 1024
        let first = try c.readdir(1, offset: 0, count: count)
        let middle = try c.readdir(1, offset: first.last!.offset, count: count)
        let offsets: [UInt64] = [0, first.last!.offset, middle.last!.offset]
        var expected: [UInt64: [String]] = [:]
        for offset in offsets { expected[offset] = try c.readdir(1, offset: offset, count: count).map(\.name) }
        #expect(Set(offsets).count == 3 && expected.values.allSatisfy { $0.count > 5 }, "the fixture is too small")

        var wrong: [String] = []
        for round in 0..<150 {
            var sent: [UInt16: UInt64] = [:]
            for index in 0..<12 {
                let tag = UInt16(100 + index)
                let offset = offsets[(round + index) % offsets.count]
                #expect(c.send(.readdir(fid: 1, offset: offset, count: count), tag: tag))
                sent[tag] = offset
            }
            for _ in 0..<sent.count {
                guard case let .message(m) = c.receive(), let offset = sent[m.tag] else {
                    Issue.record("a reply went missing in round \(round)")
                    return
                }
                let got = Self.names(m)
                if got != expected[offset] {
                    wrong.append("round \(round), offset \(offset): \(got.prefix(3)) instead of \(expected[offset]!.prefix(3))")
                }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) of 1800 Rreaddirs listed from elsewhere: \(wrong.prefix(4))")
    }

    @Test func pipelinedXattrWritesAndClunkNeverSetAMixedValue() throws {
        let s = try TestServer { $0.workerThreads = 4 }
        defer { s.shutdown() }
        makeFile(s("f"), [1])
        let c = try s.session()
        let chunk = 512
        let chunks = 3
        var full = [UInt8]()
        for index in 0..<chunks { full += [UInt8](repeating: UInt8(65 + index), count: chunk) }
        var setWhole = 0
        for round in 0..<200 {
            try c.walk(0, 1, ["f"])
            try c.xattrcreate(1, "user.race", size: UInt64(full.count), flags: 0)
            // Every chunk and the clunk at once: each Twrite appends at exactly the current end
            // or fails; the clunk sets the whole value or fails; nothing else may happen.
            var appended = 0
            for index in 0..<chunks {
                let data = Array(full[index * chunk..<(index + 1) * chunk])
                #expect(c.send(.write(fid: 1, offset: UInt64(index * chunk), data: c.view(data)), tag: UInt16(200 + index)))
            }
            #expect(c.send(.clunk(fid: 1), tag: 300))
            var clunked: Bool? = nil
            for _ in 0...chunks {
                guard case let .message(m) = c.receive() else {
                    Issue.record("a reply went missing in round \(round)")
                    return
                }
                switch (m.tag, m.response) {
                case (300, .clunk): clunked = true
                case (300, .lerror): clunked = false
                case let (_, .write(count)): appended += Int(count)
                case let (_, .lerror(code)):
                    #expect(code == LinuxErrno.EINVAL || code == LinuxErrno.EBADF, "a Twrite failed with \(code)")
                default: Issue.record("unexpected \(m.response.type) for tag \(m.tag)")
                }
            }
            let value = xattrValue(s("f"), "user.race").value
            if clunked == true {
                #expect(appended == full.count && value == full, "round \(round): the clunk set \(value?.count ?? -1) bytes after \(appended) were appended")
                setWhole += 1
            } else if let value {
                #expect(value == full, "round \(round): a failed clunk left a partial value of \(value.count) bytes")
            }
            // Start the next round from nothing.
            let fd = open(s("f"), O_RDONLY | O_CLOEXEC)
            _ = ninep_fd_removexattr(fd, "user.race")
            Glibc.close(fd)
        }
        #expect(setWhole > 0, "no round set the value: the test proves nothing")
    }

    /// Two Twrites at the same offset of one xattr fid, pipelined: at most one may append (the
    /// other finds the end moved), so a value of two chunks can never be completed and set.
    /// Without one lock around the check and the append, both could pass the check and set a
    /// value no sequence of writes allows.
    @Test func twoXattrWritesAtOneOffsetNeverBothAppend() throws {
        let s = try TestServer { $0.workerThreads = 4 }
        defer { s.shutdown() }
        makeFile(s("f"), [1])
        let c = try s.session()
        let a = [UInt8](repeating: 0x61, count: 2048)
        let b = [UInt8](repeating: 0x62, count: 2048)
        for round in 0..<300 {
            try c.walk(0, 1, ["f"])
            try c.xattrcreate(1, "user.twice", size: 4096, flags: 0)
            #expect(c.send(.write(fid: 1, offset: 0, data: c.view(a)), tag: 401))
            #expect(c.send(.write(fid: 1, offset: 0, data: c.view(b)), tag: 402))
            var appended = 0
            for _ in 0..<2 {
                guard case let .message(m) = c.receive() else {
                    Issue.record("a reply went missing in round \(round)")
                    return
                }
                if case .write = m.response { appended += 1 }
            }
            #expect(appended == 1, "round \(round): \(appended) of two writes at offset 0 appended")
            #expect(errnoOf { try c.clunk(1) } == LinuxErrno.EINVAL, "round \(round): a half-written value was set")
            #expect(xattrValue(s("f"), "user.twice").value == nil)
        }
    }
}
