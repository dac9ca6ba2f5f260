/// Linux file-type bits and dirent types, spelled out once (Glibc and the C shim both export
/// the C macros, which makes them ambiguous in Swift).
enum FileMode {
    static let typeMask: UInt32 = 0o170000
    static let directory: UInt32 = 0o040000
    static let symlink: UInt32 = 0o120000
    static let regular: UInt32 = 0o100000
    static let fifo: UInt32 = 0o010000
    static let socket: UInt32 = 0o140000
    static let characterDevice: UInt32 = 0o020000
    static let blockDevice: UInt32 = 0o060000
    static let permissionMask: UInt32 = 0o7777

    static func isDirectory(_ mode: UInt32) -> Bool { mode & typeMask == directory }
    static func isSymlink(_ mode: UInt32) -> Bool { mode & typeMask == symlink }
    /// Files whose reads and writes ignore the offset and may block on another party.
    static func isStreaming(_ mode: UInt32) -> Bool {
        let t = mode & typeMask
        return t == fifo || t == socket || t == characterDevice
    }

    static let direntDirectory: UInt8 = 4
    static let direntSymlink: UInt8 = 10
}
