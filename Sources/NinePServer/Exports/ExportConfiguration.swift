/// One exported directory and its policy, as configured: what a Tattach with its `name` as
/// aname (or its path) gets. The server turns each into an `Export` when it opens the directory.
public struct ExportConfiguration: Sendable, Equatable {
    /// The attach name (aname) that selects it. Empty for the export made from the one-export
    /// options (`--export`): reached only by an empty aname or by its path.
    public var name: String
    /// The directory exported.
    public var path: String
    /// Every change is refused with EROFS.
    public var readOnly = false
    /// When set, every attach runs as this user and group (root squash and beyond).
    public var squash: SquashIdentity? = nil
    /// Users who may attach (nil: everyone). Checked against the attaching uid.
    public var allowedUsers: Set<UInt32>? = nil
    /// Who checks permissions (see `AccessMode`).
    public var access: AccessMode = .user

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    /// True for an aname a config file may give: 1 to 255 bytes of letters, digits, '.', '-'
    /// and '_', neither "." nor "..". Anything else could be mistaken for a path (the kernel
    /// client sends the export path as aname) or not survive a mount option string.
    public static func isCleanName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255, name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }

    /// For logs: "a -> /srv/a" (or the path alone for the unnamed export).
    public var label: String { name.isEmpty ? path : "\(name) -> \(path)" }
}

/// The user every attach of a squashed export runs as.
public struct SquashIdentity: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32

    public init(uid: UInt32, gid: UInt32) {
        self.uid = uid
        self.gid = gid
    }
}
