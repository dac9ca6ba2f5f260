import Logging
import NinePServer

/// SIGHUP with --config: the file is read and checked again, whole. A file that cannot be used
/// is logged with the reason and changes nothing. Otherwise its exports replace the server's
/// for new attaches (sessions attached before keep theirs until they clunk), and settings that
/// a running server cannot change are logged as needing a restart and keep their running values.
struct ConfigReload {
    let path: String
    let flags: Ninepd
    /// What the server runs with now (the exports as last applied).
    private(set) var running: DaemonSettings

    init(path: String, flags: Ninepd, running: DaemonSettings) {
        self.path = path
        self.flags = flags
        self.running = running
    }

    mutating func reload(_ server: Server, logger: Logger) {
        let wanted: DaemonSettings
        do throws(ConfigError) {
            wanted = try DaemonSettings(flags: flags, file: try ConfigLoader.load(path))
        } catch {
            logger.error("received SIGHUP: not reloading \(path), nothing changed: \(error.description)")
            return
        }
        let changes: ExportChanges
        do throws(ServerStartError) {
            changes = try server.replaceExports(wanted.exports)
        } catch {
            logger.error("received SIGHUP: not reloading \(path), nothing changed: \(error.description)")
            return
        }
        // localio: a grant is a descriptor the export's old policy allowed; take them all back
        // (clients continue those files by 9P, where the fid's policy still applies).
        let revoked = server.revokeLocalGrants()
        if revoked > 0 { logger.notice("reloading \(path): revoked \(revoked) localio grant(s)") }
        let restart = wanted.needingRestart(comparedTo: running)
        running.exports = wanted.exports
        if !restart.isEmpty {
            logger.warning("reloading \(path): \(restart.joined(separator: ", ")) changed in the file; a running ninepd cannot change \(restart.count == 1 ? "it" : "them"): restart ninepd to apply, the old values stay until then")
        }
        logger.notice("reloaded \(path): \(changes); serving \(server.exportSummaries.joined(separator: "; "))")
    }
}
