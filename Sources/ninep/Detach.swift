import ArgumentParser
import Glibc
import NinePFuse

/// `ninep mount` without -f: runs `ninep mount -f ...` as a new session in the background and
/// returns once the mount is ready, with the child's errors on our standard error.
///
/// The child's standard error is a pipe to us. When its mount is ready it writes a NUL byte and
/// points its standard error at /dev/null, which closes the pipe: we then check the mount in
/// /proc/self/mountinfo and exit 0. If the child fails, it reports on the pipe and exits: we
/// relay that and exit with its status.
/// (No fork of this multithreaded process: the child is a fresh exec.)
enum Detach {
    static let environmentKey = "NINEP_MOUNT_DETACHED"

    /// `arguments`: the child's command line after the program name (`mount -f ...`).
    static func runInBackground(mountpoint: String, arguments: [String]) throws {
        // Resolved now: once mounted, resolving it would ask the daemon.
        let canonical = FuseMounter.canonical(mountpoint) ?? mountpoint
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw FuseMountError.system("cannot create a pipe", errno) }
        // Neither end may leak into the child beyond the dup2 below.
        _ = fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeFDs[1], F_SETFD, FD_CLOEXEC)
        let argv: [UnsafeMutablePointer<CChar>?] = (["ninep"] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var environment = ProcessEnvironment.current()
        environment.append("\(environmentKey)=1")
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A session of its own: the terminal's ^C and hang-up do not reach the daemon.
        // POSIX_SPAWN_SETSID (glibc 2.26+): the Glibc module does not import the macro.
        posix_spawnattr_setflags(&attributes, 0x80)
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv, envp)
        close(pipeFDs[1])
        guard spawned == 0 else {
            close(pipeFDs[0])
            throw FuseMountError.system("cannot start the mount daemon", spawned)
        }
        // Relay what the child says until it closes its standard error. A NUL byte just before
        // the close means the mount is ready; a close without it means the child is exiting.
        var buffer = [UInt8](repeating: 0, count: 4096)
        var ready = false
        while true {
            let n = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            var text = buffer[0..<n]
            if let marker = text.firstIndex(of: 0) {
                ready = true
                text = text[..<marker]
            }
            _ = text.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
        close(pipeFDs[0])
        if !ready {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 1
            throw ExitCode(code == 0 ? 1 : code)
        }
        guard FuseMounter.mountedDevice(at: canonical) != nil else {
            Report.printError("ninep: mount: the mount daemon (pid \(pid)) said it was ready but \(mountpoint) is not mounted")
            throw ExitCode(1)
        }
    }

    /// Called in the child once the mount is ready: the marker, then standard error to /dev/null.
    static func silenceStandardError() {
        var marker: UInt8 = 0
        _ = write(STDERR_FILENO, &marker, 1)
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        if null >= 0 {
            dup2(null, STDERR_FILENO)
            close(null)
        }
    }

    static func currentDirectory() -> String {
        guard let cwd = getcwd(nil, 0) else { return "." }
        defer { free(cwd) }
        return String(cString: cwd)
    }
}

enum ProcessEnvironment {
    static func current() -> [String] {
        var result: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            result.append(String(cString: entry))
            pointer += 1
        }
        return result
    }
}
