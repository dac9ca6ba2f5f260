import Glibc

/// `ninep` run as `mount.ninep` or `mount.fuse.ninep`: the helper mount(8) runs for an
/// /etc/fstab line of type `ninep` or `fuse.ninep`, as
/// `mount.ninep SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS] [-t TYPE]`. It becomes
/// `ninep mount SOURCE MOUNTPOINT -o OPTIONS`, without the options that are mount(8)'s own.
enum MountHelper {
    static let names: Set<String> = ["mount.ninep", "mount.fuse.ninep"]

    /// Options that mean something to mount(8), systemd or the kernel's generic mount flags,
    /// not to this file system (FUSE mounts are nosuid and nodev anyway).
    static let genericOptions: Set<String> = [
        "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "_netdev", "nofail",
        "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime", "norelatime",
        "strictatime", "nostrictatime", "lazytime", "nolazytime", "diratime", "nodiratime", "sync", "async",
        "loud", "silent",
    ]

    /// The command line to parse: `arguments` itself unless the program was run as a helper.
    /// A fake mount (-f) exits 0 at once, as mount(8) asks.
    static func commandLine(_ arguments: [String]) -> [String] {
        guard let program = arguments.first, names.contains(String(program.split(separator: "/").last ?? "")) else {
            return Array(arguments.dropFirst())
        }
        var positional: [String] = []
        var options: [String] = []
        var index = 1
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            switch argument {
            case "-o":
                if index < arguments.count { options += kept(arguments[index]); index += 1 }
            case "-t", "-N":
                index += 1  // the type is ours; a namespace is not supported (mount(8) rarely sends one)
            case _ where argument.hasPrefix("-o"):
                options += kept(String(argument.dropFirst(2)))
            case _ where argument.hasPrefix("-") && argument.count > 1:
                if argument.contains("f") { exit(0) }  // -f: fake, do nothing; -s, -n, -v: nothing to do
            default:
                positional.append(argument)
            }
        }
        var result = ["mount"] + positional
        if !options.isEmpty { result += ["-o", options.joined(separator: ",")] }
        return result
    }

    static func kept(_ list: String) -> [String] {
        list.split(separator: ",").map(String.init).filter { option in
            let key = option.split(separator: "=", maxSplits: 1).first.map(String.init) ?? option
            return !genericOptions.contains(key) && !key.hasPrefix("x-") && key != "comment"
        }
    }
}
