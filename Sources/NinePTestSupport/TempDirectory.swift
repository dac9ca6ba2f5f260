import Glibc

/// A temporary directory under /tmp (mkdtemp), removed with everything in it when released.
public final class TempDirectory: Sendable {
    public let path: String

    public init(prefix: String = "ninep-test") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw WireClientError.unexpected("mkdtemp failed: errno \(errno)")
        }
        path = String(cString: made)
    }

    /// The path of `relative` inside the directory.
    public func callAsFunction(_ relative: String) -> String { "\(path)/\(relative)" }

    public func remove() { removeTree(path) }

    deinit { remove() }
}

/// `rm -rf` without following symlinks.
func removeTree(_ path: String) {
    guard let st = lstatOf(path) else { return }
    if UInt32(st.st_mode) & Mode.typeMask == Mode.directory {
        if let dir = opendir(path) {
            var names: [String] = []
            while let entry = Glibc.readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(dir)
            for name in names { removeTree("\(path)/\(name)") }
        }
        rmdir(path)
    } else {
        unlink(path)
    }
}
