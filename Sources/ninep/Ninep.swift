import ArgumentParser
import Glibc
import Synchronization

@main
struct Ninep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ninep",
        abstract: "Use a 9P2000.L file server (ninepd, diod, QEMU's virtfs, ...) from the shell.",
        discussion: """
            Every command talks to one server. Name it with --server ADDR or the
            NINEP_SERVER environment variable; ADDR is tcp:HOST:PORT, HOST:PORT or
            unix:PATH. Remote paths are relative to the attached export ("/" is its
            root).

              export NINEP_SERVER=tcp:127.0.0.1:5640
              ninep ls -l /
              ninep put big.iso /images/big.iso
              ninep cat /etc/motd | less
              ninep df --server 10.0.0.2:564 --aname /srv/share

            diod wants the exported path as the attach name: --aname /srv/share.

            Exit status: 0 on success, 1 when an operation failed (the message says
            which path and why, as cp or rm would), 2 when the server cannot be reached
            or the connection is lost, 64 for a usage error.
            """,
        version: BuildStamp.versionLine(program: "ninep"),
        subcommands: [
            List.self, Stat.self, Cat.self, Get.self, Put.self, Remove.self, MakeDirectory.self, Move.self, Link.self,
            DiskFree.self, Bench.self, Top.self, Mount.self, Unmount.self,
        ]
    )

    /// Runs the command in a task that ^C cancels: the call in flight is flushed, and the
    /// process exits with 130 as a shell expects after an interrupt.
    static func main() async {
        let command: any ParsableCommand
        do {
            command = try parseAsRoot(MountHelper.commandLine(CommandLine.arguments))
        } catch {
            exit(withError: error)
        }
        let interrupted = Interrupted()
        let box = CommandBox(command: command)
        let task = Task {
            var command = box.command
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        }
        Interrupts.onInterrupt {
            interrupted.flag.store(true, ordering: .sequentiallyConsistent)
            task.cancel()
        }
        do {
            try await task.value
        } catch {
            if interrupted.flag.load(ordering: .sequentiallyConsistent) { Glibc.exit(130) }
            exit(withError: error)
        }
        if interrupted.flag.load(ordering: .sequentiallyConsistent) { Glibc.exit(130) }
    }
}

/// Set once the user pressed ^C.
final class Interrupted: Sendable {
    let flag = Atomic<Bool>(false)
}

/// Hands the parsed command to the task that runs it. `@unchecked Sendable`: the value is
/// moved, not shared: `main` never touches it after creating the task.
struct CommandBox: @unchecked Sendable {
    let command: any ParsableCommand
}
