import Glibc

/// An export the server serves: its configuration, the tree it opened for it, and what its
/// policy means on this host. Every fid attached through it keeps a reference (`FidEntry.export`),
/// so a reload that replaces or removes the export leaves existing sessions on the policy and
/// root they attached with until they clunk.
public final class Export<Backend: FileSystemBackend>: Sendable {
    public let configuration: ExportConfiguration
    /// The tree rooted at the export's directory. Its handles are interchangeable with the
    /// server's backend (see `FileSystemBackend.sibling(exporting:)`); the server asks it only
    /// about the root: `openRoot`, `isExportRoot`, `isExportName`, `locate`.
    public let backend: Backend
    /// Root, --access user: each request runs with the attaching user's fsuid/fsgid/groups.
    let switchesIdentity: Bool
    /// Root, --access client: requests run as root and new files are given to the attaching
    /// user, in the group and mode the request names (see `AccessMode.client`).
    let ownsForClients: Bool

    init(configuration: ExportConfiguration, backend: Backend, privileged: Bool) {
        self.configuration = configuration
        self.backend = backend
        switchesIdentity = privileged && configuration.access == .user
        ownsForClients = privileged && configuration.access == .client
    }

    var readOnly: Bool { configuration.readOnly }

    /// True when a Tattach's aname selects this export: its name, or its path (diod and the
    /// kernel client send the path), with or without a trailing slash.
    func matches(aname: String) -> Bool {
        if !configuration.name.isEmpty && aname == configuration.name { return true }
        let trimmed = aname.count > 1 && aname.hasSuffix("/") ? String(aname.dropLast()) : aname
        return trimmed == configuration.path || backend.isExportName(trimmed)
    }

    /// For logs: aname, where it resolves, read-only or read-write, and whose identity
    /// requests run with.
    public var summary: String {
        let c = configuration
        let name = c.name.isEmpty ? "(default)" : c.name
        let identity = geteuid() != 0 ? "as uid \(geteuid()) for everyone"
            : c.squash.map { "squashed to uid \($0.uid) gid \($0.gid)" }
            ?? (c.access == .client ? "root, owners from the client, permissions checked by the client (access client: trusted clients only)"
                : "per attaching user")
        let allowed = c.allowedUsers.map { " only uids \($0.sorted().map(String.init).joined(separator: ","))," } ?? ""
        return "\(name) -> \(backend.exportDescription) (\(c.readOnly ? "read-only" : "read-write"),\(allowed) identity \(identity))"
    }
}
