import ArgumentParser
import Glibc
import NinePClient

struct Cat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write remote files to standard output, like cat.",
        discussion: """
              ninep cat /notes.txt
              ninep cat /logs/a /logs/b | grep error

            Symbolic links are followed when their target is relative (resolved on the
            server, from the link's directory); an absolute target is reported, not read.
            """
    )

    @OptionGroup var server: ServerOptions
    @Argument(help: "Remote paths.") var paths: [String]

    func run() async throws {
        let client = try await server.connect(for: "cat")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: client.maxIOSize, alignment: 4096)
        defer { buffer.deallocate() }
        try await forEachPath("cat", paths) { path in
            try await using(try await client.open(try await SymlinkResolution.follow(client, path))) { file in
                var offset: UInt64 = 0
                while true {
                    let n = try await file.read(into: buffer, at: offset)
                    if n == 0 { break }
                    guard writeAll(STDOUT_FILENO, UnsafeRawBufferPointer(rebasing: buffer[0..<n])) else {
                        throw LocalError(path: "standard output", errno: errno)
                    }
                    offset += UInt64(n)
                }
            }
        }
    }
}
