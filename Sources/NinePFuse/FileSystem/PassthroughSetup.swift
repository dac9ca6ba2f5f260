import Glibc
import NinePClient

/// What `-o passthrough=` means for connecting and for INIT (docs/LOCALIO.md, "ninep mount").
enum PassthroughSetup {
    /// Before connecting: `off` does not offer localio at all; `on` fails now, with the reason,
    /// when passthrough cannot be had whatever the server says, and requires localio of it.
    static func prepare(_ mode: PassthroughMode, _ configuration: inout ClientConfiguration, writebackCache: Bool) throws(FuseMountError) {
        switch mode {
        case .off:
            configuration.localIO = .disabled
        case .auto:
            break
        case .on:
            guard case .unix = configuration.address else {
                throw FuseMountError("-o passthrough=on needs the server on a unix socket (unix:PATH or /PATH): only a local server can pass descriptors", errno: EPROTONOSUPPORT)
            }
            if writebackCache {
                throw FuseMountError("-o passthrough=on cannot be combined with cache=writeback: the kernel does not pass through with the write-back cache", errno: EINVAL)
            }
            if let why = PassthroughCapability.missingReason {
                throw FuseMountError("-o passthrough=on: \(why)", errno: EPERM)
            }
            configuration.localIO = .required
        }
    }

    /// After connecting: whether INIT asks the kernel for FUSE_PASSTHROUGH.
    static func offer(_ mode: PassthroughMode, client: NinePClient, writebackCache: Bool, log: (String) -> Void) -> Bool {
        guard mode != .off, client.isProvenLocal else { return false }
        if writebackCache {
            log("cache=writeback: no FUSE passthrough (the kernel refuses the two together); the daemon's workers use localio grants")
            return false
        }
        if let why = PassthroughCapability.missingReason {
            log("\(why): the daemon's workers use localio grants instead (pread and pwrite, no 9P data)")
            return false
        }
        return true
    }

    /// How open files' data moves, for the "mounted" line.
    static func dataPath(_ fileSystem: NinePFileSystem, client: NinePClient, mode: PassthroughMode) -> String {
        if fileSystem.passthrough.enabled { return "by FUSE passthrough" }
        if mode != .off && client.isProvenLocal { return "by localio grants in the daemon" }
        return "through 9P"
    }
}
