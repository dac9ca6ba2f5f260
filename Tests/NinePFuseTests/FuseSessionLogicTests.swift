@testable import NinePFuse
import Testing

@Suite("FUSE session choices")
struct FuseSessionLogicTests {
    let kernel745 = FuseInitIn(major: 7, minor: 45, maxReadahead: 131072, flags: FuseInitFlags(rawValue: 0x5fd73fffffb))

    @Test func initTakesOnlyWhatWasAskedAndOffered() throws {
        let answer = try FuseInitNegotiation.reply(to: kernel745, configuration: FuseSessionConfiguration())
        #expect(answer.major == 7 && answer.minor == 45)
        #expect(answer.flags == [.bigWrites, .maxPages, .parallelDirops, .autoInvalData, .posixLocks])
        #expect(!answer.flags.contains(.asyncRead))
        var plus = FuseSessionConfiguration()
        plus.readdirplus = true
        #expect(try FuseInitNegotiation.reply(to: kernel745, configuration: plus).flags.isSuperset(of: [.doReaddirplus, .readdirplusAuto]))
        #expect(answer.maxWrite == 1 << 20 && answer.maxPages == 256)
        #expect(answer.maxReadahead == 131072)
        var configuration = FuseSessionConfiguration()
        configuration.asyncRead = true
        configuration.maxWrite = 1_044_480 + 100
        let withAsync = try FuseInitNegotiation.reply(to: kernel745, configuration: configuration)
        #expect(withAsync.flags.contains(.asyncRead))
        #expect(withAsync.maxWrite == 1_044_480 && withAsync.maxPages == 255)
        // A flag we want but the kernel does not offer is not taken.
        let modest = FuseInitIn(major: 7, minor: 31, maxReadahead: 65536, flags: [.bigWrites])
        let old = try FuseInitNegotiation.reply(to: modest, configuration: FuseSessionConfiguration())
        #expect(old.minor == 31 && old.flags == [.bigWrites])
    }

    /// cache=writeback and cache=none ask for their flags; a flag of the second word is only read
    /// by the kernel when FUSE_INIT_EXT is set in the reply (cache=none's mmap failed with ENODEV
    /// before this was set).
    @Test func cacheModesAskForTheirFlagsAndTheSecondWordIsAnnounced() throws {
        var configuration = FuseSessionConfiguration()
        configuration.writebackCache = true
        let writeback = try FuseInitNegotiation.reply(to: kernel745, configuration: configuration)
        #expect(writeback.flags.contains(.writebackCache))
        #expect(!writeback.flags.contains(.initExt), "no second-word flag was asked for")
        configuration = FuseSessionConfiguration()
        configuration.directIOAllowMmap = true
        let none = try FuseInitNegotiation.reply(to: kernel745, configuration: configuration)
        #expect(none.flags.contains(.directIOAllowMmap) && none.flags.contains(.initExt))
        #expect(!none.flags.contains(.writebackCache))
        let back = try KernelBytes.struct_(none).withUnsafeBytes { raw in try FuseInitOut.decode(raw) }
        #expect(back.flags == none.flags, "the second word survives the wire")
        // A kernel that does not offer them gets neither.
        let modest = FuseInitIn(major: 7, minor: 38, maxReadahead: 65536, flags: [.bigWrites, .initExt])
        #expect(try FuseInitNegotiation.reply(to: modest, configuration: configuration).flags == [.bigWrites])
    }

    @Test func initRefusesOtherMajorsAndTooOldKernels() {
        #expect(throws: FuseMountError.self) {
            _ = try FuseInitNegotiation.reply(to: FuseInitIn(major: 8, minor: 0, maxReadahead: 0, flags: []), configuration: FuseSessionConfiguration())
        }
        #expect(throws: FuseMountError.self) {
            _ = try FuseInitNegotiation.reply(to: FuseInitIn(major: 7, minor: 26, maxReadahead: 0, flags: []), configuration: FuseSessionConfiguration())
        }
    }

    @Test func buffersFitTheLargestRequestAndReply() {
        var configuration = FuseSessionConfiguration()
        #expect(configuration.requestBytes >= FuseInHeader.wireSize + FuseWriteIn.wireSize + configuration.effectiveMaxWrite)
        #expect(configuration.replyBytes >= FuseOutHeader.wireSize + configuration.effectiveMaxWrite)
        configuration.maxWrite = 100
        #expect(configuration.pages == 1 && configuration.requestBytes == FuseProtocol.minimumReadBuffer)
        configuration.maxWrite = 64 << 20
        #expect(configuration.pages == 256)
    }

    @Test func deviceNumbersConvertBetweenEncodings() {
        // /dev/sda1 (8:1), /dev/null (1:3), a large minor.
        for (major, minor) in [(UInt32(8), UInt32(1)), (1, 3), (259, 70000)] {
            let glibc = (UInt64(major & 0xfff) << 8) | (UInt64(major & ~0xfff) << 32) | UInt64(minor & 0xff) | (UInt64(minor & ~0xff) << 12)
            let fromNineP = DeviceNumber(linux: glibc)
            #expect(fromNineP == DeviceNumber(major: major, minor: minor))
            #expect(DeviceNumber(fuse: fromNineP.fuseEncoding) == fromNineP)
        }
    }

    @Test func anInterruptCancelsOnlyTheRequestItNames() {
        let table = InFlightRequests(workers: 2)
        table.begin(worker: 0, unique: 10)
        table.begin(worker: 1, unique: 11)
        #expect(table.count == 2)
        // INTERRUPT of unique 11: worker 1's canceller fires, worker 0's does not.
        #expect(table.cancel(11))
        #expect(table.cancellers[1].isCancelled && !table.cancellers[0].isCancelled)
        // Answered: a late INTERRUPT finds nothing, and the worker's next request starts afresh.
        table.finish(worker: 1)
        #expect(!table.cancel(11))
        table.begin(worker: 1, unique: 12)
        #expect(!table.cancellers[1].isCancelled)
        #expect(!table.cancel(11) && !table.cancellers[1].isCancelled)
        table.finish(worker: 0)
        table.finish(worker: 1)
        #expect(table.count == 0)
    }

    @Test func anInterruptReadBeforeItsRequestBeganCancelsItWhenItBegins() {
        // Another worker read the INTERRUPT first: it is kept, and the request is cancelled as
        // soon as its worker begins it; other requests are not.
        let table = InFlightRequests(workers: 2)
        #expect(!table.cancel(20))
        table.begin(worker: 0, unique: 21)
        #expect(!table.cancellers[0].isCancelled)
        table.begin(worker: 1, unique: 20)
        #expect(table.cancellers[1].isCancelled && !table.cancellers[0].isCancelled)
        // Matched once: a later request of the worker starts afresh.
        table.finish(worker: 1)
        table.begin(worker: 1, unique: 22)
        #expect(!table.cancellers[1].isCancelled)
    }

    @Test func mountinfoEscapesAreUndone() {
        #expect(FuseMounter.unescapeMountinfo("/tmp/a\\040b") == "/tmp/a b")
        #expect(FuseMounter.unescapeMountinfo("/plain") == "/plain")
    }
}

@Suite("FUSE slot pool and its queue")
struct FuseSlotPoolTests {
    func request(_ unique: UInt64, _ bytes: Int = 64) -> [UInt8] {
        var b = [UInt8](repeating: UInt8(truncatingIfNeeded: unique), count: bytes)
        b[0] = UInt8(truncatingIfNeeded: unique)
        return b
    }

    /// Puts `bytes` into `slot` as if read from /dev/fuse.
    func read(_ bytes: [UInt8], into slot: FuseSlot) {
        bytes.withUnsafeBytes { slot.request.copyMemory(from: $0) }
        slot.length = bytes.count
    }

    @Test func theLastReaderQueuesSmallRequestsThatWaitInOrder() throws {
        // Two workers: the first to read serves, the second (the last reader) queues.
        let pool = FuseSlotPool(slots: 2, requestBytes: 16384, replyBytes: 4096, held: 2)
        let (busy, last) = (pool.slot(0), pool.slot(1))
        read(request(6), into: busy)
        #expect(pool.claim(busy, unique: 6) == .serve)
        #expect(pool.readingCount == 1)
        read(request(7), into: last)
        #expect(pool.claim(last, unique: 7) == .queued)
        read(request(8), into: last)
        #expect(pool.claim(last, unique: 8) == .queued)
        #expect(pool.heldRequests == 2 && pool.readingCount == 1)
        // An INTERRUPT of the second takes it out.
        #expect(pool.cancelHeld(8) && !pool.cancelHeld(8))
        read(request(9), into: last)
        #expect(pool.claim(last, unique: 9) == .queued)
        // The busy worker, done, serves the oldest in its slot, then the next, then reads.
        #expect(pool.finished(busy))
        #expect(busy.length == 64 && busy.request[0] == 7)
        #expect(pool.finished(busy))
        #expect(busy.request[0] == 9)
        #expect(!pool.finished(busy))
        #expect(pool.readingCount == 2 && pool.heldRequests == 0)
        // With another worker reading, what the last one reads it serves itself.
        read(request(10, 100), into: last)
        #expect(pool.claim(last, unique: 10) == .serve)
        #expect(!pool.finished(last) && pool.readingCount == 2)
    }

    @Test func largeRequestsWaitInTheLargeReserve() throws {
        let pool = FuseSlotPool(slots: 2, requestBytes: 65536, replyBytes: 4096, held: 1, large: 2)
        let (busy, last) = (pool.slot(0), pool.slot(1))
        read(request(0), into: busy)
        #expect(pool.claim(busy, unique: 100) == .serve)
        // A large request (a WRITE's data) fits no 8 KiB buffer: it takes a large one, and so
        // does a small one once the small buffer is taken; the last reader never waited.
        read(request(1, 40000), into: last)
        #expect(pool.claim(last, unique: 1) == .queued)
        read(request(2), into: last)
        #expect(pool.claim(last, unique: 2) == .queued)
        read(request(3), into: last)
        #expect(pool.claim(last, unique: 3) == .queued)
        #expect(pool.heldRequests == 3)
        // Served in order of arrival, the large one whole.
        #expect(pool.finished(busy))
        #expect(busy.length == 40000 && busy.request[0] == 1 && busy.request[39999] == 1)
        #expect(pool.finished(busy))
        #expect(busy.request[0] == 2)
        // An INTERRUPT of the queued third frees its buffer.
        #expect(pool.cancelHeld(3))
        #expect(!pool.finished(busy) && pool.heldRequests == 0 && pool.readingCount == 2)
    }

    @Test func aLastReaderWaitingForRoomServesOnceAnotherWorkerReads() async throws {
        // No held buffers at all: the last reader must wait, and is let go when the busy worker
        // finishes (it then serves its request itself: the other reads).
        let pool = FuseSlotPool(slots: 2, requestBytes: 16384, replyBytes: 4096, held: 0, large: 0)
        let (busy, last) = (pool.slot(0), pool.slot(1))
        read(request(1), into: busy)
        #expect(pool.claim(busy, unique: 1) == .serve)
        read(request(2), into: last)
        let waiter = Task.detached { pool.claim(last, unique: 2) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(!pool.finished(busy))
        #expect(await waiter.value == .serve)
        #expect(pool.readingCount == 1)
    }
}
