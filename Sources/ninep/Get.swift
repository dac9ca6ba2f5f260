import ArgumentParser
import Glibc
import NinePClient

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a remote file to a local file.",
        discussion: """
            Several reads are in flight at once (--window), each one message of up to
            the negotiated msize. A progress bar is drawn on standard error when it is a
            terminal. LOCAL may be an existing directory; "-" writes to standard output.

              ninep get /images/big.iso ~/Downloads/
              ninep get --window 16 /data/set.tar - | tar x
            """
    )

    @OptionGroup var server: ServerOptions
    @OptionGroup var transfer: TransferOptions
    @Argument(help: "The remote file.") var remote: String
    @Argument(help: "The local file, directory, or - for standard output.") var local: String

    func run() async throws {
        let client = try await server.connect(for: "get", localIO: transfer.localIO)
        do {
            try await using(try await client.open(try await SymlinkResolution.follow(client, remote))) { file in
                let size = try await file.stat().size
                var target = local
                if local != "-", isLocalDirectory(local) {
                    target = Formatting.join(local, Formatting.baseName(remote))
                }
                let fd = target == "-" ? STDOUT_FILENO : open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw LocalError(path: target, errno: errno) }
                defer { if fd != STDOUT_FILENO { close(fd) } }
                var bar = Progress(total: size, label: Formatting.baseName(remote), mode: transfer.progress)
                if fd == STDOUT_FILENO {
                    try await stream(file, to: fd, progress: &bar)
                } else {
                    _ = try await Transfer(file: file, local: fd, localPath: target, window: transfer.window).download(size: size, progress: &bar)
                }
                bar.finish()
            }
        } catch {
            Report.failure("get", error, path: remote)
            throw ExitCode(Report.status(error))
        }
    }

    /// Standard output may be a pipe (no pwrite): one read at a time, in order.
    private func stream(_ file: RemoteFile, to fd: Int32, progress: inout Progress) async throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: file.ioSize, alignment: 4096)
        defer { buffer.deallocate() }
        var offset: UInt64 = 0
        while true {
            let n = try await file.read(into: buffer, at: offset)
            if n == 0 { return }
            guard writeAll(fd, UnsafeRawBufferPointer(rebasing: buffer[0..<n])) else { throw LocalError(path: "standard output", errno: errno) }
            offset += UInt64(n)
            progress.advance(by: n)
        }
    }
}

