import ArgumentParser
import NinePClient

struct Link: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ln",
        abstract: "Make a hard link, or with -s a symbolic link.",
        discussion: """
            As with ln, TARGET comes first. A symbolic link stores TARGET as text: it is
            resolved by whoever follows the link, never by the server.

              ninep ln /data/v2 /data/v2-backup
              ninep ln -s ../shared/config /home/me/config
            """
    )

    @OptionGroup var server: ServerOptions
    @Flag(name: .short, help: "Make a symbolic link.") var s = false
    @Argument(help: "What the link points to (an existing remote file for a hard link).") var target: String
    @Argument(help: "The new link's remote path.") var link: String

    func run() async throws {
        let client = try await server.connect(for: "ln")
        try await forEachPath("ln", [link]) { link in
            if s {
                try await client.symlink(target, at: link)
            } else {
                try await client.link(target, at: link)
            }
        }
    }
}
