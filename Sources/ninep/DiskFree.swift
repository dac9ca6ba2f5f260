import ArgumentParser
import NinePClient

struct DiskFree: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "df",
        abstract: "Show the size and free space of the file system behind a path (Tstatfs).",
        discussion: """
              ninep df
              ninep df -h /scratch
            """
    )

    @OptionGroup var server: ServerOptions
    @Flag(name: .short, help: "Human-readable sizes (KiB, MiB, GiB) instead of 1K blocks.") var h = false
    @Argument(help: "Remote paths (default: /).") var paths: [String] = []

    func run() async throws {
        let client = try await server.connect(for: "df")
        let targets = paths.isEmpty ? ["/"] : paths
        print(h ? "Size       Used       Avail      Use% Path" : "1K-blocks      Used     Available Use% Path")
        try await forEachPath("df", targets) { path in
            let s = try await client.statfs(path)
            let block = Double(s.blockSize)
            let total = Double(s.blocks) * block
            let used = Double(s.blocks - min(s.blocks, s.blocksFree)) * block
            let available = Double(s.blocksAvailable) * block
            let percent = used + available > 0 ? Int((used * 100 / (used + available)).rounded(.up)) : 0
            let columns: [String]
            if h {
                columns = [Formatting.pad(Formatting.size(total), 10, left: true), Formatting.pad(Formatting.size(used), 10, left: true),
                           Formatting.pad(Formatting.size(available), 10, left: true)]
            } else {
                columns = [Formatting.pad(String(UInt64(total / 1024)), 9), Formatting.pad(String(UInt64(used / 1024)), 9),
                           Formatting.pad(String(UInt64(available / 1024)), 13)]
            }
            print(columns.joined(separator: " ") + " " + Formatting.pad("\(percent)%", 4) + " " + path)
        }
    }
}
