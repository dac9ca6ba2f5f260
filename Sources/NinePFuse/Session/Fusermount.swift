import CNinePShims
import Glibc

/// Mounting and unmounting as an ordinary user, through libfuse's set-uid helper `fusermount3`
/// (Debian `fuse3`): it opens /dev/fuse, mounts it where the user may, and hands the descriptor
/// back over the unix socket named in `_FUSE_COMMFD`. Only the helper is used, not libfuse.
enum Fusermount {
    static let program = "fusermount3"

    /// Mounts through fusermount3; returns the /dev/fuse descriptor it passed back.
    static func mount(_ parameters: FuseMountParameters) throws(FuseMountError) -> Int32 {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw .system("cannot create a socket pair for \(program)", errno)
        }
        let (ours, theirs) = (pair[0], pair[1])
        defer { close(ours) }
        // The helper's end must survive its exec; ours stays close-on-exec.
        _ = fcntl(theirs, F_SETFD, 0)
        let spawned = spawn(["-o", options(parameters), "--", parameters.mountpoint], commFD: theirs)
        close(theirs)
        let pid: pid_t
        switch spawned {
        case let .success(started): pid = started
        case let .failure(error): throw error
        }
        // fusermount3 sends the descriptor and exits; on failure it says why on our standard
        // error and exits without sending (the socket then reads as closed).
        let fd = ninep_receive_descriptor(ours)
        let receiveError = ninep_errno()
        let status = wait(pid)
        guard fd >= 0 else {
            if status != 0 {
                throw FuseMountError("\(program) could not mount \(parameters.source) on \(parameters.mountpoint) (exit \(status))"
                    + (parameters.allowOther ? "; allow_other needs user_allow_other in /etc/fuse.conf" : ""), errno: EPERM)
            }
            throw .system("\(program) passed no /dev/fuse descriptor back", receiveError == 0 ? EPROTO : receiveError)
        }
        return fd
    }

    /// `fusermount3 -u [-z] MOUNTPOINT`: unmounts a mount of this user's.
    static func unmount(_ mountpoint: String, lazy: Bool) throws(FuseMountError) {
        var arguments = ["-u"]
        if lazy { arguments.append("-z") }
        arguments += ["--", mountpoint]
        let pid: pid_t
        switch spawn(arguments, commFD: nil) {
        case let .success(started): pid = started
        case let .failure(error): throw error
        }
        let status = wait(pid)
        guard status == 0 else {
            throw FuseMountError("\(program) -u \(mountpoint) failed (exit \(status)): see its message above", errno: EBUSY)
        }
    }

    /// The -o list for fusermount3: it adds fd, rootmode, user_id and group_id itself, and
    /// always nosuid and nodev for users. Commas and backslashes in values are escaped.
    static func options(_ parameters: FuseMountParameters) -> String {
        func escaped(_ value: String) -> String {
            var text = ""
            for character in value {
                if character == "," || character == "\\" { text.append("\\") }
                text.append(character)
            }
            return text
        }
        var list = [parameters.readOnly ? "ro" : "rw", "nosuid", "nodev", "subtype=ninep", "fsname=" + escaped(parameters.source)]
        if parameters.allowOther { list.append("allow_other") }
        if parameters.defaultPermissions { list.append("default_permissions") }
        if parameters.maxRead > 0 { list.append("max_read=\(parameters.maxRead)") }
        return list.joined(separator: ",")
    }

    /// Starts fusermount3 (found on PATH) with our standard streams; with `commFD`, tells it
    /// which inherited descriptor to pass the mount back on.
    static func spawn(_ arguments: [String], commFD: Int32?) -> Result<pid_t, FuseMountError> {
        let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var environment: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if !text.hasPrefix("_FUSE_COMMFD=") { environment.append(text) }
            entry += 1
        }
        if let commFD { environment.append("_FUSE_COMMFD=\(commFD)") }
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let code = posix_spawnp(&pid, program, nil, nil, argv, envp)
        guard code == 0 else {
            let hint = code == ENOENT ? "mounting as an ordinary user needs \(program): apt-get install fuse3" : nil
            return .failure(.system("cannot run \(program)", code, hint: hint))
        }
        return .success(pid)
    }

    /// Waits for `pid`; its exit status, or 128 + the signal that ended it.
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 1 }
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
