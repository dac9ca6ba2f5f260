import ArgumentParser
import Glibc
import NinePClient

struct Put: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a local file to the server.",
        discussion: """
            The remote file is created (mode of the local file) or truncated and
            overwritten. REMOTE may be an existing remote directory. Several writes are
            in flight at once (--window); a progress bar is drawn on standard error when
            it is a terminal.

              ninep put big.iso /images/
              ninep put --progress never report.pdf /inbox/report.pdf
            """
    )

    @OptionGroup var server: ServerOptions
    @OptionGroup var transfer: TransferOptions
    @Argument(help: "The local file.") var local: String
    @Argument(help: "The remote file or directory.") var remote: String

    func run() async throws {
        let client = try await server.connect(for: "put", localIO: transfer.localIO)
        var target = remote
        do {
            let fd = open(local, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw LocalError(path: local, errno: errno) }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0 else { throw LocalError(path: local, errno: errno) }
            guard info.st_mode & S_IFMT == S_IFREG else { throw LocalError(path: local, errno: EISDIR) }
            if let existing = try? await client.stat(remote), existing.isDirectory {
                target = Formatting.join(remote, Formatting.baseName(local))
            }
            let file: RemoteFile
            do {
                file = try await client.open(target, .write, options: .truncate)
            } catch let error as NinePError where error.errno == ENOENT {
                file = try await client.create(target, permissions: UInt32(info.st_mode) & 0o777, .write)
            }
            try await using(file) { file in
                let size = UInt64(info.st_size)
                var bar = Progress(total: size, label: Formatting.baseName(local), mode: transfer.progress)
                _ = try await Transfer(file: file, local: fd, localPath: local, window: transfer.window).upload(size: size, progress: &bar)
                bar.finish()
            }
        } catch {
            Report.failure("put", error, path: target)
            throw ExitCode(Report.status(error))
        }
    }
}
