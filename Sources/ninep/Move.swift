import ArgumentParser
import NinePClient

struct Move: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mv",
        abstract: "Rename or move a file or directory on the server.",
        discussion: """
            If DESTINATION is an existing directory, SOURCE moves into it. Both must be
            on the same server and export (9P has no cross-device rename).

              ninep mv /inbox/report.pdf /archive/
            """
    )

    @OptionGroup var server: ServerOptions
    @Argument(help: "The remote path to move.") var source: String
    @Argument(help: "The new remote path, or an existing directory.") var destination: String

    func run() async throws {
        let client = try await server.connect(for: "mv")
        try await forEachPath("mv", [source]) { source in
            var target = destination
            if let existing = try? await client.stat(destination), existing.isDirectory {
                target = Formatting.join(destination, Formatting.baseName(source))
            }
            try await client.rename(source, to: target)
        }
    }
}
