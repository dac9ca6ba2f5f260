import Glibc

/// What the kernel is told when the file system is mounted.
public struct FuseMountParameters: Sendable {
    /// The directory to mount on.
    public var mountpoint: String
    /// Shown as the source in /proc/mounts (the server's address).
    public var source: String
    /// Let users other than the mounting one use the mount.
    public var allowOther = false
    /// Let the kernel check permissions from the mode bits before asking the daemon.
    public var defaultPermissions = false
    public var readOnly = false
    /// Largest READ the kernel sends (the mount's max_read); 0 leaves the kernel's default.
    public var maxRead: UInt32 = 0

    public init(mountpoint: String, source: String) {
        self.mountpoint = mountpoint
        self.source = source
    }
}

/// Mounting and unmounting: through the kernel directly (mount(2) and umount2(2)) as root, and
/// through `fusermount3` as an ordinary user (or where mount(2) is refused); and the fusectl
/// escape for a connection that no longer answers.
public enum FuseMounter {
    /// The file system type shown in /proc/mounts.
    public static let type = "fuse.ninep"

    /// Opens /dev/fuse and mounts it on `parameters.mountpoint`; returns the descriptor the
    /// session reads requests from. Nothing is left mounted or open on failure. An ordinary
    /// user mounts through fusermount3, and so does root where mount(2) is refused (EPERM: a
    /// user namespace without CAP_SYS_ADMIN).
    public static func mount(_ parameters: FuseMountParameters) throws(FuseMountError) -> Int32 {
        try checkMountpoint(parameters.mountpoint)
        if geteuid() != 0 { return try Fusermount.mount(parameters) }
        do {
            return try mountDirectly(parameters)
        } catch let error where error.errno == EPERM {
            return try Fusermount.mount(parameters)
        }
    }

    static func checkMountpoint(_ mountpoint: String) throws(FuseMountError) {
        var status = stat()
        guard stat(mountpoint, &status) == 0 else {
            throw .system("cannot mount on \(mountpoint)", errno, hint: "the mount point must be an existing directory")
        }
        guard status.st_mode & S_IFMT == S_IFDIR else {
            throw FuseMountError("cannot mount on \(mountpoint): not a directory", errno: ENOTDIR)
        }
    }

    /// mount(2) of a freshly opened /dev/fuse, as root.
    static func mountDirectly(_ parameters: FuseMountParameters) throws(FuseMountError) -> Int32 {
        let fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            let hint = code == ENOENT ? "this kernel has no FUSE: modprobe fuse" : code == EACCES ? "opening /dev/fuse needs root" : nil
            throw .system("cannot open /dev/fuse", code, hint: hint)
        }
        var options = "fd=\(fd),rootmode=40000,user_id=\(getuid()),group_id=\(getgid())"
        if parameters.allowOther { options += ",allow_other" }
        if parameters.defaultPermissions { options += ",default_permissions" }
        if parameters.maxRead > 0 { options += ",max_read=\(parameters.maxRead)" }
        var flags = UInt(MS_NOSUID | MS_NODEV)
        if parameters.readOnly { flags |= UInt(MS_RDONLY) }
        if Glibc.mount(parameters.source, parameters.mountpoint, type, flags, options) != 0 {
            let code = errno
            close(fd)
            let hint = code == EPERM ? "mounting needs root or CAP_SYS_ADMIN; trying fusermount3" : nil
            throw .system("cannot mount \(parameters.source) on \(parameters.mountpoint)", code, hint: hint)
        }
        return fd
    }

    /// Unmounts `mountpoint`; with `lazy`, detaches it even while busy (MNT_DETACH). An ordinary
    /// user (or root refused by umount2) unmounts through `fusermount3 -u`.
    public static func unmount(_ mountpoint: String, lazy: Bool = false) throws(FuseMountError) {
        if geteuid() != 0 { return try Fusermount.unmount(mountpoint, lazy: lazy) }
        if umount2(mountpoint, lazy ? Int32(MNT_DETACH) : 0) != 0 {
            let code = errno
            if code == EPERM { return try Fusermount.unmount(mountpoint, lazy: lazy) }
            let hint = code == EBUSY ? "a process still uses it; close it or unmount lazily (-l)"
                : code == EINVAL ? "not a mount point" : code == EPERM ? "unmounting needs root or CAP_SYS_ADMIN" : nil
            throw .system("cannot unmount \(mountpoint)", code, hint: hint)
        }
    }

    /// The canonical absolute form of `path` (as /proc/self/mountinfo spells mount points).
    /// Resolve it before mounting: afterwards, resolving the mount point itself asks the daemon.
    public static func canonical(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The device number ("major:minor") of the FUSE mount on `mountpoint` (canonical), read from
    /// /proc/self/mountinfo, so that nothing asks the (perhaps hung) daemon; nil when there is
    /// no FUSE mount there. With several mounts stacked there, the last (the visible one).
    public static func mountedDevice(at mountpoint: String) -> (major: UInt32, minor: UInt32)? {
        guard let file = fopen("/proc/self/mountinfo", "re") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        var found: (UInt32, UInt32)? = nil
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            // id parent major:minor root mountpoint options ... - type source superoptions
            let fields = String(cString: line).split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > 4, unescapeMountinfo(fields[4]) == mountpoint,
                  let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count,
                  fields[dash + 1] == "fuse" || fields[dash + 1].hasPrefix("fuse.") else { continue }
            let numbers = fields[2].split(separator: ":")
            if numbers.count == 2, let major = UInt32(numbers[0]), let minor = UInt32(numbers[1]) { found = (major, minor) }
        }
        return found
    }

    /// mountinfo writes space, tab, newline and backslash as octal escapes.
    static func unescapeMountinfo(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.first {
            if byte == UInt8(ascii: "\\"), utf8.count >= 4, let value = UInt8(String(decoding: utf8.dropFirst().prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(4)
            } else {
                bytes.append(byte)
                utf8 = utf8.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The directory of the connection of the FUSE mount on `mountpoint` (canonical) under
    /// /sys/fs/fuse/connections (fusectl); the kernel names it after the device number, which
    /// for FUSE's anonymous devices (major 0) is the minor.
    public static func connectionDirectory(of mountpoint: String) -> String? {
        guard let (major, minor) = mountedDevice(at: mountpoint) else { return nil }
        return "/sys/fs/fuse/connections/\((major << 20) | minor)"
    }

    /// Sets the readahead window of the FUSE mount on `mountpoint` (canonical), in KiB, through
    /// its backing device in sysfs (/sys/class/bdi/MAJOR:MINOR/read_ahead_kb). The kernel starts
    /// FUSE mounts at 128 KiB whatever INIT says, so sequential reads would go 128 KiB at a time;
    /// a window of max_write lets each READ carry as much as one Tread. Returns the errno, 0 on
    /// success.
    public static func setReadahead(of mountpoint: String, kib: Int) -> Int32 {
        guard let (major, minor) = mountedDevice(at: mountpoint) else { return ENOENT }
        let fd = open("/sys/class/bdi/\(major):\(minor)/read_ahead_kb", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        var text = "\(kib)\n"
        let written = text.withUTF8 { write(fd, $0.baseAddress, $0.count) }
        return written > 0 ? 0 : errno
    }

    /// Ends a connection that no longer answers: writes to fusectl's `abort` file (mounting
    /// fusectl first if needed). Every request in flight then fails with ENOTCONN.
    @discardableResult
    public static func abort(connectionDirectory directory: String) -> Bool {
        if access("/sys/fs/fuse/connections", F_OK) == 0, access(directory, F_OK) != 0 {
            _ = Glibc.mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, nil)
        }
        let fd = open(directory + "/abort", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var byte: UInt8 = 0x31
        return write(fd, &byte, 1) == 1
    }
}
