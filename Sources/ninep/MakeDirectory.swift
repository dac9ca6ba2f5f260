import ArgumentParser
import Glibc
import NinePClient

struct MakeDirectory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mkdir",
        abstract: "Create directories.",
        discussion: """
              ninep mkdir /inbox
              ninep mkdir -p /projects/2026/q4
            """
    )

    @OptionGroup var server: ServerOptions
    @Flag(name: .short, help: "Create missing parents; an existing directory is not an error.") var p = false
    @Option(name: .short, help: "Permissions, octal: the directories get exactly these (a 9P2000.L server applies no umask of its own).") var mode = "755"
    @Argument(help: "Remote paths.") var paths: [String]

    func validate() throws {
        guard UInt32(mode, radix: 8) != nil else { throw ValidationError("-m takes octal permissions, e.g. 750") }
    }

    func run() async throws {
        let client = try await server.connect(for: "mkdir")
        let permissions = UInt32(mode, radix: 8)!
        try await forEachPath("mkdir", paths) { path in
            guard p else {
                try await client.mkdir(path, permissions: permissions)
                return
            }
            var prefix = ""
            for name in path.split(separator: "/") {
                prefix += "/" + name
                do {
                    try await client.mkdir(prefix, permissions: permissions)
                } catch let error as NinePError where error.errno == EEXIST {
                    guard try await client.stat(prefix).isDirectory else { throw NinePError(.server, errno: ENOTDIR, operation: .mkdir, path: prefix) }
                }
            }
        }
    }
}
