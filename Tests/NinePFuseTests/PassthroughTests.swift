@testable import NinePFuse
import Testing

/// FUSE passthrough without a kernel: what INIT asks for, and how the opens of one node are
/// kept all-passthrough or all-cached (the kernel's rule, fs/fuse/iomode.c).
struct PassthroughTests {
    let kernel745 = FuseInitIn(major: 7, minor: 45, maxReadahead: 131072, flags: FuseInitFlags(rawValue: 0x5fd73fffffb))

    @Test func initAsksForPassthroughWithAStackDepthAndTheSecondWord() throws {
        var configuration = FuseSessionConfiguration()
        #expect(!(try FuseInitNegotiation.reply(to: kernel745, configuration: configuration)).flags.contains(.passthrough), "not unless configured")
        configuration.passthrough = true
        let answer = try FuseInitNegotiation.reply(to: kernel745, configuration: configuration)
        #expect(answer.flags.contains(.passthrough) && answer.flags.contains(.initExt))
        #expect(answer.maxStackDepth == 2, "the kernel drops passthrough unless 1 <= max_stack_depth <= 2")
        let back = try KernelBytes.struct_(answer).withUnsafeBytes { raw in try FuseInitOut.decode(raw) }
        #expect(back.flags == answer.flags && back.maxStackDepth == 2, "flags2 and max_stack_depth survive the wire")
    }

    @Test func neverWithTheWritebackCacheNorUnoffered() throws {
        var configuration = FuseSessionConfiguration()
        configuration.passthrough = true
        configuration.writebackCache = true
        let writeback = try FuseInitNegotiation.reply(to: kernel745, configuration: configuration)
        #expect(writeback.flags.contains(.writebackCache) && !writeback.flags.contains(.passthrough) && writeback.maxStackDepth == 0)
        configuration.writebackCache = false
        let older = FuseInitIn(major: 7, minor: 38, maxReadahead: 65536, flags: [.bigWrites, .initExt])
        let answer = try FuseInitNegotiation.reply(to: older, configuration: configuration)
        #expect(!answer.flags.contains(.passthrough) && answer.maxStackDepth == 0)
    }

    @Test func opensOfANodeStayPlainWhileOneIsPlain() {
        let backings = PassthroughBackings(capacity: 16)
        // Before INIT agreed (or without it): every open is plain, and recorded.
        guard case .plain = backings.decide(node: 5, handle: 1, read: true, write: false) else { Issue.record("not plain before enable"); return }
        backings.enable(fuseFD: 1_000_000)  // never used: no registration happens here
        // Node 5 has a plain open: the kernel keeps that inode cached, so no passthrough yet.
        guard case .plain = backings.decide(node: 5, handle: 2, read: true, write: false) else { Issue.record("passthrough beside a cached open"); return }
        // Another node may start passthrough.
        guard case .firstOpen = backings.decide(node: 6, handle: 3, read: true, write: false) else { Issue.record("node 6 not offered passthrough"); return }
        #expect(backings.counts.plainHandles == 2)
        backings.released(1)
        backings.released(2)
        #expect(backings.counts.plainHandles == 0)
        // The plain opens are gone: node 5 may start passthrough now.
        guard case .firstOpen = backings.decide(node: 5, handle: 4, read: true, write: true) else { Issue.record("node 5 still plain after its releases"); return }
        backings.released(99)  // an unknown handle changes nothing
        #expect(backings.counts == (0, 0, 0))
    }
}
