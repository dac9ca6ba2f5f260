import ArgumentParser
import Glibc
import NinePClient

struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove files (and, with -r, directories and everything in them).",
        discussion: """
            Without -r a directory is refused ("Is a directory"); -d removes empty ones.
            Like coreutils' rm, -r refuses the export root ("/", ".", "a/..", any path that
            names it) unless --no-preserve-root is given.

              ninep rm /tmp/old.log
              ninep rm -r /build
            """
    )

    @OptionGroup var server: ServerOptions
    @Flag(name: .short, help: "Remove directories and their contents recursively.") var r = false
    @Flag(name: .short, help: "Remove empty directories.") var d = false
    @Flag(name: .short, help: "Ignore paths that do not exist.") var f = false
    @Flag(help: "Let -r remove everything in the export root (refused without it).") var noPreserveRoot = false
    @Argument(help: "Remote paths.") var paths: [String]

    func run() async throws {
        let client = try await server.connect(for: "rm")
        try await forEachPath("rm", paths) { path in
            let attributes: FileAttributes
            do {
                attributes = try await client.stat(path)
            } catch let error as NinePError where f && error.errno == ENOENT {
                return
            }
            if attributes.isDirectory {
                // Known by its qid, so every spelling of the root is caught ("/", ".", "a/..").
                let isRoot = attributes.qid.path == client.rootQid.path
                if r && isRoot && !noPreserveRoot { throw RootRefused(path: path) }
                if r {
                    // The export root itself stays (a server cannot remove it): its contents go.
                    try await removeTree(client, path, keepingItself: isRoot)
                } else if d {
                    try await client.remove(path, directory: true)
                } else {
                    throw NinePError(.invalidArgument, errno: EISDIR, operation: .unlinkat, path: path)
                }
            } else {
                try await client.remove(path)
            }
        }
    }

    /// Depth first: the contents, then the directory. Subdirectories are known by their qid,
    /// so a symbolic link to a directory is removed, not followed.
    private func removeTree(_ client: NinePClient, _ path: String, keepingItself: Bool = false) async throws {
        var names: [(String, Bool)] = []
        for try await entry in client.readdir(path) { names.append((entry.name, entry.qid.isDirectory)) }
        for (name, isDirectory) in names {
            let child = Formatting.join(path, name)
            if isDirectory { try await removeTree(client, child) } else { try await client.remove(child) }
        }
        if !keepingItself { try await client.remove(path, directory: true) }
    }
}

/// `rm -r` of the export root without --no-preserve-root.
struct RootRefused: Error, CustomStringConvertible {
    let path: String
    var description: String {
        "\(path): is the export root: refusing to remove everything in it (use --no-preserve-root to do so)"
    }
}
