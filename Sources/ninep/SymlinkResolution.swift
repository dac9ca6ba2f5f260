import Glibc
import NinePClient

/// `cat` and `get` follow symbolic links as cat(1) and cp(1) do. A relative target is resolved
/// from the link's directory on the server; an absolute one is not followed: it names a path on
/// whichever machine resolves it (the server's, or a mounter's), not one inside the export.
enum SymlinkResolution {
    /// Links followed before giving up, as Linux's MAXSYMLINKS.
    static let limit = 40

    /// `path` with every symbolic link along its last component followed.
    static func follow(_ client: NinePClient, _ path: String) async throws -> String {
        var current = path
        for _ in 0..<limit {
            let attributes = try await client.stat(current)
            guard attributes.isSymlink else { return current }
            let target = try await client.readlink(current)
            if target.hasPrefix("/") { throw AbsoluteSymlink(path: current, target: target) }
            current = Formatting.join(Formatting.directoryName(current), target)
        }
        throw NinePError(.server, errno: ELOOP, operation: .walk, path: path)
    }
}

/// A symbolic link whose absolute target `cat` and `get` do not follow.
struct AbsoluteSymlink: Error, CustomStringConvertible {
    let path: String
    let target: String
    var description: String {
        "\(path): is a symbolic link to '\(target)', an absolute path that names no file of the export; read the target by its path in the export"
    }
}
