import Glibc
import NinePClient

/// Text forms for listings: modes as ls shows them, sizes, times.
enum Formatting {
    /// "drwxr-xr-x" from st_mode bits.
    static func mode(_ mode: UInt32) -> String {
        let type: Character
        switch FileType(mode: mode) {
        case .directory: type = "d"
        case .symlink: type = "l"
        case .fifo: type = "p"
        case .socket: type = "s"
        case .characterDevice: type = "c"
        case .blockDevice: type = "b"
        default: type = "-"
        }
        var text = String(type)
        let letters: [Character] = ["r", "w", "x"]
        for shift in stride(from: 6, through: 0, by: -3) {
            for (index, letter) in letters.enumerated() {
                text.append(mode & (1 << UInt32(shift + 2 - index)) != 0 ? letter : "-")
            }
        }
        func special(_ bit: UInt32, at index: Int, _ set: Character, _ setWithoutX: Character) {
            guard mode & bit != 0 else { return }
            var chars = Array(text)
            chars[index] = chars[index] == "x" ? set : setWithoutX
            text = String(chars)
        }
        special(0o4000, at: 3, "s", "S")
        special(0o2000, at: 6, "s", "S")
        special(0o1000, at: 9, "t", "T")
        return text
    }

    /// "1.5 GiB", "812 KiB", "17 B".
    static func size(_ bytes: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = bytes
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(Int(value)) B" }
        return fixed(value, value < 10 ? 1 : 0) + " " + units[unit]
    }

    /// A number with `digits` decimals, without Foundation.
    static func fixed(_ value: Double, _ digits: Int) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        _ = buffer.withUnsafeMutableBufferPointer { raw in
            withVaList([value]) { vsnprintf(raw.baseAddress, 64, "%.\(digits)f", $0) }
        }
        return cText(buffer)
    }

    /// Local time as "2026-11-21 23:05:09.123456789 +0000" (stat) or "Nov 21 23:05" (ls -l).
    static func time(_ stamp: Timestamp, long: Bool) -> String {
        var seconds = time_t(stamp.seconds)
        var broken = tm()
        localtime_r(&seconds, &broken)
        var buffer = [CChar](repeating: 0, count: 64)
        let format = long ? "%Y-%m-%d %H:%M:%S" : "%b %e %H:%M"
        _ = strftime(&buffer, 64, format, &broken)
        var text = cText(buffer)
        if long {
            let nanos = String(stamp.nanoseconds)
            text += "." + String(repeating: "0", count: max(0, 9 - nanos.count)) + nanos
            var zone = [CChar](repeating: 0, count: 16)
            _ = strftime(&zone, 16, " %z", &broken)
            text += cText(zone)
        }
        return text
    }

    static func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return left ? text + padding : padding + text
    }

    /// The last name of a remote path ("/a/b" gives "b", "/" gives "/").
    static func baseName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? "/"
    }

    /// The directory holding `path` ("/" for a name in the root).
    static func directoryName(_ path: String) -> String {
        let parts = path.split(separator: "/").dropLast()
        return "/" + parts.joined(separator: "/")
    }

    /// `directory` + "/" + `name`, without doubled slashes.
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}

/// Writes all of `bytes` to a descriptor (stdout for cat).
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        done += n
    }
    return true
}

/// Runs `body` with `file` and closes (clunks) it afterwards, also on failure.
func using<T>(_ file: RemoteFile, _ body: (RemoteFile) async throws -> T) async throws -> T {
    do {
        let result = try await body(file)
        await file.close()
        return result
    } catch {
        await file.close()
        throw error
    }
}

/// The text of a NUL-terminated C buffer.
func cText(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// True when the local `path` is a directory (following symbolic links, as cp does).
func isLocalDirectory(_ path: String) -> Bool {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    close(fd)
    return true
}
