import ArgumentParser
import Glibc
import NinePClient
import NinePFuse
import NinePMemory
import NinePTransport

struct Mount: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount a 9P2000.L server on a directory through FUSE.",
        discussion: """
            SERVER is tcp:HOST:PORT, HOST:PORT or unix:PATH (or /PATH). The command
            returns once the mount is ready and serves it in the background; with -f
            it stays in the foreground and logs, and ^C (or SIGTERM) unmounts.
            Unmount with `ninep umount MOUNTPOINT` (or umount MOUNTPOINT).

            Root mounts with mount(2). An ordinary user mounts on a directory of
            their own through fusermount3 (Debian package fuse3), and unmounts
            with `ninep umount` or `fusermount3 -u`.

            For /etc/fstab, install the helper (scripts/install links
            /sbin/mount.ninep and /sbin/mount.fuse.ninep to ninep) and write:
              unix:/run/ninepd.sock  /mnt/share  ninep  aname=share,_netdev  0 0

              ninep mount 127.0.0.1:5640 /mnt/share
              ninep mount -f -o default_permissions /run/ninepd.sock /mnt/share
              ninep mount -o cache=none,aname=home /run/ninepd.sock ~/share
              ninep umount /mnt/share

            -o takes a comma-separated list:
              aname=NAME, uname=USER, msize=SIZE
                                    as --aname, --uname, --msize (for fstab)
              cache=MODE            what the kernel keeps of file contents:
                                    none: nothing, every read and write and
                                      (timeouts 0) every stat asks the server;
                                    attr (default): the page cache, dropped
                                      when the server's mtime or size changes,
                                      writes sent as they come;
                                    writeback: writes gathered in the page
                                      cache and sent later: fastest for small
                                      writes, but write(2) returns before the
                                      server has the data (close and fsync
                                      send it)
              passthrough=MODE      file data by descriptor when the server is
                                    ninepd on this host (a unix socket, localio
                                    proven; docs/LOCALIO.md):
                                    auto (default): the kernel reads and writes
                                      the server's file itself (FUSE
                                      passthrough; needs root: CAP_SYS_ADMIN),
                                      else this daemon does (pread/pwrite),
                                      else 9P;
                                    on: passthrough or no mount (says why);
                                    off: all data through 9P
              ro                    mount read-only
              allow_other           let other users use the mount; mounted by
                                    root, each calling user gets an attach of
                                    its own (as access=user: the server checks
                                    permissions as that user and new files are
                                    theirs); entry_timeout then defaults to 0
                                    unless default_permissions is given (the
                                    kernel's name cache is shared by all users)
              default_permissions   the kernel checks the mode bits first (needed
                                    with allow_other against a server that
                                    leaves checks to the client: diod, or
                                    ninepd with --access client)
              uidmap=SERVER:LOCAL[:COUNT]
                                    map COUNT (1) uids from SERVER on the server
                                    to LOCAL here and back (owners shown, chown,
                                    attach uids); may be repeated; ids outside
                                    every range are the same on both sides
              gidmap=SERVER:LOCAL[:COUNT]
                                    the same for groups (new files' group too)
              user_fids=N           per-user fids kept with allow_other (default
                                    4096; the least recently used are clunked)
              max_write=SIZE        largest READ/WRITE (default 1M, at most
                                    what the server's msize allows)
              slots=N               requests served at once (default 8; each
                                    holds about 2 x max_write, from start-up)
              async_read            let the kernel send readahead without
                                    waiting: faster sequential reads, but a
                                    read through the page cache from a server
                                    that stopped answering may then not be
                                    interruptible (off by default)
              read_ahead=N          READs asked of the server before the kernel
                                    sends them, for handles read sequentially:
                                    up to 3 ahead of one reader, N in all
                                    (default 3; each holds a buffer of
                                    max_write from start-up; 0: none; never
                                    with cache=none or O_DIRECT)
              readdirplus           list directories with each entry's
                                    attributes (READDIRPLUS: a walk and a
                                    getattr per entry of the first batch; off
                                    by default: it made a plain listing of
                                    10,000 names 3x slower and ls -l no
                                    faster here; noreaddirplus: the default)
              readdirplus_window=N  entries of a READDIRPLUS looked up at
                                    once (default 1: one after another,
                                    allocation-free; up to 64: faster
                                    listings, some allocations each)
              readahead=SIZE        sequential read window (default max_write;
                                    0 keeps the kernel's 128K)
              max_nodes=N           files the kernel may hold at once (49152;
                                    beyond: ENFILE until it forgets some)
              max_handles=N         files open at once (12288; beyond: ENFILE)
              entry_timeout=S       seconds the kernel trusts a name (1)
              attr_timeout=S        seconds it trusts attributes (1)
            """
    )

    @Argument(help: ArgumentHelp("The server.", valueName: "server")) var server: String
    @Argument(help: ArgumentHelp("An existing directory to mount on.", valueName: "mountpoint")) var mountpoint: String
    @Flag(name: .short, help: "Stay in the foreground and log to standard error.") var f = false
    @Option(name: .short, help: ArgumentHelp("Mount options (see above), comma-separated; may be repeated.", valueName: "options"))
    var o: [String] = []
    @Option(help: ArgumentHelp("Attach name: which export to attach (diod needs the exported path).", valueName: "name"))
    var aname = ""
    @Option(help: ArgumentHelp("User name sent in Tattach (default: your login name).", valueName: "user")) var uname: String?
    @Option(help: ArgumentHelp("Largest 9P message to ask for: bytes, or with a K or M suffix (4K to 16M).", valueName: "size"),
            transform: messageSize)
    var msize: UInt32 = 1 << 20
    @Flag(help: "Log every FUSE request (with -f).") var debug = false

    func run() async throws {
        let options = try mountOptions()
        if !f {
            try Detach.runInBackground(mountpoint: mountpoint, arguments: foregroundArguments)
            return
        }
        signal(SIGPIPE, SIG_IGN)
        let detached = getenv(Detach.environmentKey) != nil
        let log: @Sendable (String) -> Void = { Report.printError("ninep mount: \($0)") }
        do {
            try await NinePMount.run(options, log: log) {
                // Started by a `ninep mount` without -f: it waits for this stderr to close.
                if detached { Detach.silenceStandardError() }
            }
        } catch is CancellationError {
        } catch {
            Report.failure("mount", error)
            throw ExitCode(error is NinePError ? 2 : 1)
        }
    }

    /// This command as `ninep mount -f ...`: what the background daemon runs (spelled from the
    /// parsed options, so that `mount.ninep` and `ninep mount` start the same daemon).
    var foregroundArguments: [String] {
        var arguments = ["mount", "-f", server, mountpoint, "--aname", aname, "--msize", String(msize)]
        if let uname { arguments += ["--uname", uname] }
        if debug { arguments.append("--debug") }
        for list in o { arguments += ["-o", list] }
        return arguments
    }

    func mountOptions() throws -> NinePMountOptions {
        let address = try Mount.parseAddress(server)
        var client = ClientConfiguration(address: address, uname: uname ?? ClientConfiguration.currentUserName, aname: aname, msize: msize)
        var options = NinePMountOptions(client: client, mountpoint: mountpoint, source: server)
        options.fileSystem.trace = debug
        var entryTimeout: Duration? = nil
        var attributeTimeout: Duration? = nil
        for item in o.flatMap({ $0.split(separator: ",") }) {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            let key = parts[0]
            let value = parts.count > 1 ? parts[1] : nil
            func number() throws -> Double {
                guard let value, let n = Double(value), n >= 0 else { throw ValidationError("-o \(key) needs a number: \(key)=N") }
                return n
            }
            switch key {
            case "ro": options.readOnly = true
            case "rw": options.readOnly = false
            case "allow_other": options.allowOther = true
            case "default_permissions": options.defaultPermissions = true
            case "async_read": options.session.asyncRead = true
            case "readdirplus": options.session.readdirplus = true
            case "noreaddirplus": options.session.readdirplus = false
            case "readdirplus_window":
                let n = try number()
                guard n >= 1 && n <= 64 else { throw ValidationError("-o readdirplus_window must be between 1 and 64") }
                options.fileSystem.readdirplusWindow = Int(n)
            case "read_ahead":
                let n = try number()
                guard n <= 16 else { throw ValidationError("-o read_ahead must be between 0 and 16") }
                options.fileSystem.readAheadLanes = Int(n)
            case "max_write":
                guard let value, let bytes = MemoryPlan.parse(bytes: value), bytes >= 4096 else {
                    throw ValidationError("-o max_write needs a size of at least 4K, e.g. max_write=128K")
                }
                options.session.maxWrite = Int(min(bytes, 1 << 20))
            case "readahead":
                guard let value, let bytes = value == "0" ? 0 : MemoryPlan.parse(bytes: value) else {
                    throw ValidationError("-o readahead needs a size, e.g. readahead=1M (0: the kernel's 128K)")
                }
                options.readahead = Int(min(bytes, 64 << 20))
            case "slots":
                let n = try number()
                guard n >= 1 && n <= 1024 else { throw ValidationError("-o slots must be between 1 and 1024") }
                options.session.slots = Int(n)
            case "max_nodes", "max_handles":
                let n = try number()
                guard n >= 16 && n <= 16_777_216 else { throw ValidationError("-o \(key) must be between 16 and 16777216") }
                if key == "max_nodes" { options.fileSystem.nodeCapacity = Int(n) } else { options.fileSystem.handleCapacity = Int(n) }
            case "entry_timeout": entryTimeout = .milliseconds(Int64(try number() * 1000))
            case "attr_timeout": attributeTimeout = .milliseconds(Int64(try number() * 1000))
            case "cache":
                guard let value, let mode = FuseCacheMode(rawValue: value) else {
                    throw ValidationError("-o cache must be none, attr or writeback, e.g. cache=none")
                }
                options.fileSystem.cache = mode
            case "passthrough":
                guard let value, let mode = PassthroughMode(rawValue: value) else {
                    throw ValidationError("-o passthrough must be auto, on or off, e.g. passthrough=on")
                }
                options.fileSystem.passthrough = mode
            case "aname":
                client.aname = value ?? ""
            case "uname":
                guard let value, !value.isEmpty else { throw ValidationError("-o uname needs a user name, e.g. uname=alice") }
                client.uname = value
            case "msize":
                guard let value else { throw ValidationError("-o msize needs a size, e.g. msize=1M") }
                client.msize = try messageSize(value)
            case "uidmap", "gidmap":
                guard let value, let range = IdMap.parseRange(value) else {
                    throw ValidationError("-o \(key) needs SERVER:LOCAL or SERVER:LOCAL:COUNT, e.g. \(key)=1000:1001")
                }
                let added = key == "uidmap" ? options.fileSystem.identity.uidMap.add(range) : options.fileSystem.identity.gidMap.add(range)
                guard added else { throw ValidationError("-o \(key)=\(value): an empty range, one past 4294967294, or one overlapping another \(key)") }
            case "user_fids":
                let n = try number()
                guard n >= 16 && n <= 1_048_576 else { throw ValidationError("-o user_fids must be between 16 and 1048576") }
                options.fileSystem.identity.userFidCapacity = Int(n)
            default:
                throw ValidationError("unknown mount option '\(key)': see ninep mount --help")
            }
        }
        options.client = client
        // cache=none makes every stat ask the server. Without default_permissions only the
        // server checks permissions, and the kernel reuses a name one user looked up for every
        // other user until the entry times out: with other users on the mount, each of their
        // path walks must reach the server as them. A timeout given explicitly wins.
        let noCache = options.fileSystem.cache == .none
        let sharedNames = options.allowOther && !options.defaultPermissions
        options.fileSystem.entryTimeout = entryTimeout ?? (noCache || sharedNames ? .zero : options.fileSystem.entryTimeout)
        options.fileSystem.attributeTimeout = attributeTimeout ?? (noCache ? .zero : options.fileSystem.attributeTimeout)
        options.session.writebackCache = options.fileSystem.cache == .writeback
        options.session.directIOAllowMmap = noCache
        return options
    }

    /// SERVER as the client spells addresses: /PATH is a unix socket, HOST:PORT is TCP.
    static func parseAddress(_ text: String) throws -> ListenAddress {
        var spelled = text
        if text.hasPrefix("/") {
            spelled = "unix:" + text
        } else if !text.hasPrefix("tcp:") && !text.hasPrefix("unix:") {
            spelled = "tcp:" + text
        }
        do {
            return try ListenAddress(parsing: spelled)
        } catch {
            throw ValidationError("'\(text)': \(error.description): use tcp:HOST:PORT, HOST:PORT, unix:PATH or /PATH")
        }
    }
}

struct Unmount: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "umount",
        abstract: "Unmount a `ninep mount` (or any FUSE mount).",
        discussion: """
            With -l the mount is detached even while in use; with --abort its FUSE
            connection is ended first (every request in flight fails), for a mount
            whose daemon no longer answers.
            """
    )

    @Argument(help: ArgumentHelp("The mount point.", valueName: "mountpoint")) var mountpoint: String
    @Flag(name: .short, help: "Lazy: detach now, finish when no longer in use.") var l = false
    @Flag(help: "End the FUSE connection first (through /sys/fs/fuse/connections), then detach.") var abort = false

    func run() throws {
        // Absolute without resolving: resolving the mount point would ask its (perhaps hung) daemon.
        let path = mountpoint.hasPrefix("/") ? mountpoint : Detach.currentDirectory() + "/" + mountpoint
        if abort {
            if let directory = FuseMounter.connectionDirectory(of: path), FuseMounter.abort(connectionDirectory: directory) {
            } else {
                Report.printError("ninep: umount: \(path): no FUSE connection to abort found; detaching anyway")
            }
        }
        do {
            try FuseMounter.unmount(path, lazy: l || abort)
        } catch {
            Report.printError("ninep: umount: \(error)")
            throw ExitCode(1)
        }
    }
}
