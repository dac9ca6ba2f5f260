import ArgumentParser
import NinePClient

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List directories (and name files), like ls.",
        discussion: """
            Names are sorted; "." and ".." are not shown. With -l each line shows type
            and permissions, links, numeric owner and group, size, modification time and
            name (a symbolic link also shows its target).

              ninep ls -l /photos
              ninep ls -R /src
            """
    )

    @OptionGroup var server: ServerOptions
    @Flag(name: .short, help: "Long format: mode, links, owner, group, size, time, name.") var long = false
    @Flag(name: .customShort("R"), help: "List subdirectories recursively.") var recursive = false
    @Argument(help: "Remote paths (default: /).") var paths: [String] = []

    func run() async throws {
        let client = try await server.connect(for: "ls")
        let targets = paths.isEmpty ? ["/"] : paths
        try await forEachPath("ls", targets) { path in
            let attributes = try await client.stat(path)
            if !attributes.isDirectory {
                print(long ? try await longLine(client, path, name: path, attributes) : path)
                return
            }
            try await listDirectory(client, path, header: targets.count > 1 || recursive)
        }
    }

    private func listDirectory(_ client: NinePClient, _ path: String, header: Bool) async throws {
        var entries: [DirectoryEntry] = []
        for try await entry in client.readdir(path) { entries.append(entry) }
        entries.sort { $0.name < $1.name }
        if header { print("\(path):") }
        var subdirectories: [String] = []
        for entry in entries {
            let full = Formatting.join(path, entry.name)
            if long {
                let attributes = try await client.stat(full)
                print(try await longLine(client, full, name: entry.name, attributes))
            } else {
                print(entry.name)
            }
            if entry.qid.isDirectory && !entry.qid.isSymlink { subdirectories.append(full) }
        }
        guard recursive else { return }
        for directory in subdirectories {
            print("")
            try await listDirectory(client, directory, header: true)
        }
    }

    private func longLine(_ client: NinePClient, _ path: String, name: String, _ a: FileAttributes) async throws -> String {
        var line = Formatting.mode(a.mode) + " " + Formatting.pad(String(a.linkCount), 3) + " "
        line += Formatting.pad(String(a.uid), 5, left: true) + " " + Formatting.pad(String(a.gid), 5, left: true) + " "
        line += Formatting.pad(String(a.size), 10) + " " + Formatting.time(a.modificationTime, long: false) + " " + name
        if a.isSymlink { line += " -> " + (try await client.readlink(path)) }
        return line
    }
}
