/// What this daemon answers to the kernel's INIT. Kept apart from the session so that the choice
/// of each flag is written down in one place and tested without a kernel.
public enum FuseInitNegotiation {
    /// The flags asked for, and why; each is taken only when the kernel offers it.
    /// - bigWrites, maxPages: WRITEs and READs as large as `maxWrite`, not 4 KiB.
    /// - parallelDirops: LOOKUP and READDIR of one directory may run at once (9P walks are
    ///   independent), instead of the kernel serialising them per directory.
    /// - autoInvalData: the kernel drops cached pages when GETATTR shows a new mtime or size,
    ///   so changes made on the server by others become visible.
    /// - posixLocks: fcntl record locks go to the server (Tlock), so they hold against other
    ///   clients of it, not only on this host.
    /// - doReaddirplus with readdirplusAuto (unless `readdirplus` is off): READDIRPLUS answers each entry with its lookup
    ///   (NinePFileSystem+Readdirplus), which the kernel asks for when a listing starts and while
    ///   the caller stats the entries (ls -l), not for listings of names alone.
    /// - asyncRead, writebackCache, directIOAllowMmap: only if configured (`FuseSessionConfiguration`).
    /// Not asked by default: writebackCache (writes would be acknowledged before the server has them),
    /// flockLocks (flock(2) stays local:
    /// 9P has no whole-file lock of its own), exportSupport, handleKillpriv (the kernel clears set-id bits
    /// itself with a SETATTR), dontMask (the kernel applies the umask), setxattrExt; passthrough only when configured.
    public static func reply(to offer: FuseInitIn, configuration: FuseSessionConfiguration) throws(FuseMountError) -> FuseInitOut {
        guard offer.major == FuseProtocol.major else {
            throw FuseMountError("the kernel speaks FUSE \(offer.major).\(offer.minor); this daemon speaks \(FuseProtocol.major).x")
        }
        guard offer.minor >= FuseProtocol.oldestMinor else {
            throw FuseMountError("the kernel's FUSE \(offer.major).\(offer.minor) is older than 7.\(FuseProtocol.oldestMinor), the oldest this daemon supports (Linux 5.3)")
        }
        var wanted: FuseInitFlags = [.bigWrites, .maxPages, .parallelDirops, .autoInvalData, .posixLocks]
        if configuration.readdirplus { wanted.formUnion([.doReaddirplus, .readdirplusAuto]) }
        if configuration.asyncRead { wanted.insert(.asyncRead) }
        if configuration.writebackCache { wanted.insert(.writebackCache) }
        if configuration.directIOAllowMmap { wanted.insert(.directIOAllowMmap) }
        // The kernel takes passthrough only with max_stack_depth 1 or 2 and without the
        // write-back cache (it drops the flag silently otherwise): never ask for both.
        if configuration.passthrough && !configuration.writebackCache { wanted.insert(.passthrough) }
        var out = FuseInitOut()
        out.major = FuseProtocol.major
        out.minor = min(offer.minor, FuseProtocol.minor)
        out.flags = offer.flags.intersection(wanted)
        // The kernel reads the reply's second flags word only when FUSE_INIT_EXT is set in it.
        if out.flags.rawValue >> 32 != 0 { out.flags.insert(.initExt) }
        out.maxReadahead = min(offer.maxReadahead, UInt32(configuration.effectiveMaxWrite))
        out.maxWrite = UInt32(configuration.effectiveMaxWrite)
        out.maxPages = UInt16(configuration.pages)
        // Background requests are readahead and async direct IO: bounded by the slots, so that
        // synchronous requests (a stat, a ^C'd read's successor) still find one.
        out.maxBackground = UInt16(max(1, configuration.slots / 2))
        out.congestionThreshold = UInt16(max(1, configuration.slots * 3 / 8))
        out.timeGranularity = 1
        // 2 (the kernel's most): backing files may be on overlayfs too (a server exporting a
        // container's tree); the price is that this mount cannot be a lower layer of overlayfs.
        // With 1 the reverse: a backing file on overlayfs fails to register (ELOOP).
        if out.flags.contains(.passthrough) { out.maxStackDepth = 2 }
        return out
    }
}
