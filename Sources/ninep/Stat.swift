import ArgumentParser
import NinePClient

struct Stat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the server says about files (Tgetattr), like stat.",
        discussion: """
            Symbolic links are not followed (the server never follows them).

              ninep stat /etc/hosts
            """
    )

    @OptionGroup var server: ServerOptions
    @Argument(help: "Remote paths.") var paths: [String]

    func run() async throws {
        let client = try await server.connect(for: "stat")
        try await forEachPath("stat", paths) { path in
            let a = try await client.stat(path)
            var target = ""
            if a.isSymlink { target = " -> " + (try await client.readlink(path)) }
            let type: String
            switch a.fileType {
            case .regular: type = a.size == 0 ? "regular empty file" : "regular file"
            case .directory: type = "directory"
            case .symlink: type = "symbolic link"
            case .fifo: type = "fifo"
            case .socket: type = "socket"
            case .characterDevice: type = "character special file"
            case .blockDevice: type = "block special file"
            case .unknown: type = "unknown"
            }
            print("  File: \(path)\(target)")
            print("  Size: \(a.size)\tBlocks: \(a.blocks)\tIO Block: \(a.blockSize)\t\(type)")
            print("   Qid: path \(a.qid.path) version \(a.qid.version) type 0x\(String(a.qid.type, radix: 16))\tLinks: \(a.linkCount)")
            let octal = String(a.permissions, radix: 8)
            print("Access: (\(String(repeating: "0", count: max(0, 4 - octal.count)) + octal)/\(Formatting.mode(a.mode)))  Uid: \(a.uid)  Gid: \(a.gid)")
            print("Access: \(Formatting.time(a.accessTime, long: true))")
            print("Modify: \(Formatting.time(a.modificationTime, long: true))")
            print("Change: \(Formatting.time(a.changeTime, long: true))")
            if a.birthTime.seconds != 0 { print(" Birth: \(Formatting.time(a.birthTime, long: true))") }
        }
    }
}
