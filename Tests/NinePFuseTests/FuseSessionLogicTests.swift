@testable import NinePFuse
import Testing

@Suite("FUSE session choices")
struct FuseSessionLogicTests {
    let kernel745 = FuseInitIn(major: 7, minor: 45, maxReadahead: 131072, flags: FuseInitFlags(rawValue: 0x5fd73fffffb))

    @Test func initTakesOnlyWhatWasAskedAndOffered() throws {
        let answer = try FuseInitNegotiation.reply(to: kernel745, configuration: FuseSessionConfiguration())
        #expect(answer.major == 7 && answer.minor == 45)
        #expect(answer.flags == [.bigWrites, .maxPages, .parallelDirops, .autoInvalData, .posixLocks, .doReaddirplus, .readdirplusAuto])
        #expect(!answer.flags.contains(.asyncRead))
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
        let table = InFlightRequests(slots: 2)
        table.begin(slot: 0, unique: 10)
        table.begin(slot: 1, unique: 11)
        #expect(table.count == 2)
        // INTERRUPT of unique 11: slot 1's canceller fires, slot 0's does not.
        #expect(table.cancel(11))
        #expect(table.cancellers[1].isCancelled && !table.cancellers[0].isCancelled)
        // Answered: a late INTERRUPT finds nothing, and the slot's next request starts afresh.
        table.finish(slot: 1)
        #expect(!table.cancel(11))
        table.begin(slot: 1, unique: 12)
        #expect(!table.cancellers[1].isCancelled)
        #expect(!table.cancel(11) && !table.cancellers[1].isCancelled)
        table.finish(slot: 0)
        table.finish(slot: 1)
        #expect(table.count == 0)
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

    @Test func smallRequestsWaitInOrderWhileEverySlotIsBusy() throws {
        let pool = FuseSlotPool(slots: 1, requestBytes: 16384, replyBytes: 4096, held: 2)
        let busy = try #require(pool.tryTake())
        #expect(pool.tryTake() == nil)
        // Every slot busy: two small requests are queued, in order.
        #expect(request(7).withUnsafeBytes { pool.admit($0, unique: 7) } == nil)
        #expect(request(8).withUnsafeBytes { pool.admit($0, unique: 8) } == nil)
        #expect(pool.heldRequests == 2)
        // An INTERRUPT of the second takes it out.
        #expect(pool.cancelHeld(8) && !pool.cancelHeld(8))
        #expect(request(9).withUnsafeBytes { pool.admit($0, unique: 9) } == nil)
        // Giving the slot back serves the oldest on it, then the next.
        let first = try #require(pool.release(busy))
        #expect(first.length == 64 && first.request[0] == 7)
        let second = try #require(pool.release(first))
        #expect(second.request[0] == 9)
        #expect(pool.release(second) == nil)
        #expect(pool.freeCount == 1 && pool.heldRequests == 0)
        // With a slot free, admit copies the request into it at once.
        let now = try #require(request(10, 100).withUnsafeBytes { pool.admit($0, unique: 10) })
        #expect(now.length == 100 && now.request[0] == 10)
        #expect(pool.release(now) == nil)
    }

    @Test func largeRequestsWaitInTheLargeReserveWhileEverySlotIsBusy() throws {
        let pool = FuseSlotPool(slots: 1, requestBytes: 65536, replyBytes: 4096, held: 1, large: 2)
        let busy = try #require(pool.tryTake())
        // A large request (a WRITE's data) fits no 8 KiB buffer: it takes a large one, and so
        // does a small one once the small buffer is taken; the reader never waited.
        #expect(request(1, 40000).withUnsafeBytes { pool.admit($0, unique: 1) } == nil)
        #expect(request(2).withUnsafeBytes { pool.admit($0, unique: 2) } == nil)
        #expect(request(3).withUnsafeBytes { pool.admit($0, unique: 3) } == nil)
        #expect(pool.heldRequests == 3)
        // Served in order of arrival, the large one whole.
        let first = try #require(pool.release(busy))
        #expect(first.length == 40000 && first.request[0] == 1 && first.request[39999] == 1)
        let second = try #require(pool.release(first))
        #expect(second.request[0] == 2)
        // An INTERRUPT of the queued third frees its buffer.
        #expect(pool.cancelHeld(3))
        #expect(pool.release(second) == nil && pool.heldRequests == 0 && pool.freeCount == 1)
    }
}
