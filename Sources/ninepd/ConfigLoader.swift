import CNinePShims
import Glibc
import Logging
import NinePMemory
import NinePServer
import NinePTransport
import Yams

/// A config file ninepd cannot use: the message names the file, the line when there is one,
/// the key, and what to write instead.
struct ConfigError: Error, CustomStringConvertible {
    let description: String
}

/// Reads and checks `ninepd --config FILE`, all of it, before anything is applied: at start-up
/// a problem stops ninepd (exit 64), on SIGHUP it is logged and the file ignored. YAML is
/// composed into nodes first (for line numbers, unknown and repeated keys), then decoded into
/// `ConfigFile`, then each value is checked as its flag would be.
struct ConfigLoader {
    let path: String
    /// Lines of the keys seen, by key path ("msize", "exports[1].path").
    private var lines: [String: Int] = [:]

    init(path: String) {
        self.path = path
    }

    /// The file's settings and exports, or the first problem found.
    static func load(_ path: String) throws(ConfigError) -> LoadedConfig {
        var loader = ConfigLoader(path: path)
        return try loader.load()
    }

    private mutating func load() throws(ConfigError) -> LoadedConfig {
        let text = try readText()
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            // Yams says "LINE:COLUMN: error: parser: WHAT:" and then quotes the line; one line
            // is enough here, the position says where.
            let text = "\(error)"
            let head = text.split(separator: ":\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? text
            let message = head.split(separator: "\n").joined(separator: " ")
            throw ConfigError(description: "\(path):\(message); fix the YAML syntax there")
        }
        guard let root, case let .mapping(top) = root else {
            throw ConfigError(description: "\(path): is empty or not a mapping of keys: start with the exports, e.g.\n" + Self.example)
        }
        try checkKeys(top, at: "", known: ConfigFile.CodingKeys.allCases.map(\.rawValue), in: "the top level")
        if let exports = top["exports"] {
            guard case let .sequence(list) = exports else {
                throw problem("exports", "must be a list, one '- name: ...' entry per export, e.g.\n" + Self.example)
            }
            for (index, entry) in list.enumerated() {
                let at = "exports[\(index)]"
                lines[at] = entry.mark?.line
                guard case let .mapping(fields) = entry else {
                    throw problem(at, "must be a mapping with name and path, e.g. '- name: share' and 'path: /srv/share' below it")
                }
                try checkKeys(fields, at: at + ".", known: ConfigFile.Export.CodingKeys.allCases.map(\.rawValue), in: at)
            }
        }
        let file: ConfigFile
        do {
            file = try YAMLDecoder().decode(ConfigFile.self, from: text)
        } catch let error as DecodingError {
            throw describe(error)
        } catch {
            throw ConfigError(description: "\(path): \(error)")
        }
        return try check(file)
    }

    private func readText() throws(ConfigError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ConfigError(description: "\(path): cannot be read (\(String(cString: strerror(errno)))): give the path of a YAML config file (see docs/ninepd.yaml.example)")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw ConfigError(description: "\(path): cannot be read (\(String(cString: strerror(errno))))") }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > 1 << 20 { throw ConfigError(description: "\(path): is larger than 1 MiB; is it really a ninepd config file?") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(description: "\(path): is not UTF-8 text")
        }
        return text
    }

    /// Every key of `mapping` is one of `known`, and none is given twice; records their lines.
    private mutating func checkKeys(_ mapping: Node.Mapping, at prefix: String, known: [String], in place: String) throws(ConfigError) {
        var seen: [String: Int] = [:]
        for (key, value) in mapping {
            let line = key.mark?.line ?? value.mark?.line ?? 0
            guard let name = key.string else {
                throw ConfigError(description: "\(path):\(line): a key in \(place) is not a plain name: write 'key: value'")
            }
            guard known.contains(name) else {
                throw ConfigError(description: "\(path):\(line): unknown key '\(name)' in \(place): the keys there are \(known.joined(separator: ", "))")
            }
            if let first = seen[name] {
                throw ConfigError(description: "\(path):\(line): key '\(name)' is given twice in \(place) (first on line \(first)): keep one")
            }
            seen[name] = line
            lines[prefix + name] = line
        }
    }

    /// A problem with the value at `key` (a key path), located on its line when known.
    private func problem(_ key: String, _ what: String) -> ConfigError {
        let line = lines[key] ?? lines[String(key.prefix(while: { $0 != "." }))]
        return ConfigError(description: "\(path)\(line.map { ":\($0)" } ?? ""): \(key) \(what)")
    }

    /// A decoding failure, by key path and line, in words.
    private func describe(_ error: DecodingError) -> ConfigError {
        func keyPath(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += (text.isEmpty ? "" : ".") + key.stringValue
                }
            }
            return text
        }
        switch error {
        case let .keyNotFound(key, context):
            let parent = keyPath(context.codingPath)
            if parent.isEmpty && key.stringValue == "exports" {
                return ConfigError(description: "\(path): no 'exports' key: list what to export, e.g.\n" + Self.example)
            }
            return problem(parent, "has no '\(key.stringValue)': every export needs a name and a path")
        case let .typeMismatch(type, context), let .valueNotFound(type, context):
            return problem(keyPath(context.codingPath), "must be \(Self.describe(type))")
        case let .dataCorrupted(context):
            return problem(keyPath(context.codingPath), "cannot be read: \(context.debugDescription)")
        @unknown default:
            return ConfigError(description: "\(path): \(error)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Bool.Type: "true or false"
        case is Int.Type: "a whole number"
        case is UInt32.Type: "a whole number from 0 to 4294967295 (a uid or gid)"
        case is String.Type: "a text value"
        case is [UInt32].Type: "a list of uids, e.g. [1000, 1001]"
        case is [String].Type: "an address or a list of them, e.g. [tcp:127.0.0.1:5640, unix:/run/ninepd.sock]"
        default: "a value of another kind (see docs/ninepd.yaml.example)"
        }
    }

    /// Each value checked as its flag would be; exports checked and opened.
    private func check(_ file: ConfigFile) throws(ConfigError) -> LoadedConfig {
        var loaded = LoadedConfig(file: file)
        if let listen = file.listen {
            if listen.isEmpty { throw problem("listen", "is empty: give at least one address, e.g. tcp:127.0.0.1:5640") }
            for text in listen {
                do throws(ListenAddress.ParseError) {
                    loaded.listen.append(try ListenAddress(parsing: text))
                } catch {
                    throw problem("listen", "\(error.description)")
                }
            }
        }
        if let text = file.msize {
            guard let bytes = MemoryPlan.parse(bytes: text), let size = UInt32(exactly: bytes), size >= 4096 && size <= 16 << 20 else {
                throw problem("msize", "'\(text)' is not a size from 4K to 16M: give bytes or K/M, e.g. 1M")
            }
            loaded.msize = size
        }
        for (key, value) in [("max-connections", file.maxConnections), ("max-fids", file.maxFids), ("max-requests", file.maxRequests),
                             ("workers", file.workers)] {
            if let value, value < 1 { throw problem(key, "must be at least 1 (got \(value))") }
        }
        if let text = file.memoryBudget {
            guard let bytes = MemoryPlan.parse(bytes: text) else {
                throw problem("memory-budget", "'\(text)' is not a size: give bytes or a number with K, M or G, e.g. 64M")
            }
            loaded.memoryBudget = bytes
        }
        if let value = file.oomScoreAdj, !(-1000...1000).contains(value) {
            throw problem("oom-score-adj", "\(value) is out of range: give -1000 to 1000")
        }
        if let text = file.writeBehind, !["auto", "on", "off"].contains(text) {
            throw problem("write-behind", "'\(text)' is not one of auto, on, off")
        }
        if let text = file.socketMode {
            guard let mode = UInt32(text, radix: 8), mode <= 0o777 else {
                throw problem("socket-mode", "'\(text)' is not an octal mode such as 660 (quote it, \"0660\", if it starts with 0)")
            }
            loaded.socketMode = mode
        }
        if let value = file.clientTimeout, value < 0 || value > 86_400 {
            throw problem("client-timeout", "\(value) is out of range: give 0 (never) to 86400 seconds")
        }
        if let text = file.logLevel {
            guard let level = Logger.Level(rawValue: text) else {
                throw problem("log-level", "'\(text)' is not one of trace, debug, info, notice, warning, error, critical")
            }
            loaded.logLevel = level
        }
        if let text = file.metricsListen {
            do throws(ListenAddress.ParseError) {
                _ = try ListenAddress(parsing: text)
            } catch {
                throw problem("metrics-listen", "\(error.description)")
            }
        }
        loaded.exports = try checkExports(file.exports)
        return loaded
    }

    private func checkExports(_ exports: [ConfigFile.Export]) throws(ConfigError) -> [ExportConfiguration] {
        if exports.isEmpty { throw problem("exports", "is empty: list at least one export, e.g.\n" + Self.example) }
        var result: [ExportConfiguration] = []
        var firstIndex: [String: Int] = [:]
        for (index, export) in exports.enumerated() {
            let at = "exports[\(index)]"
            guard ExportConfiguration.isCleanName(export.name) else {
                throw problem(at + ".name", "'\(export.name)' is not a clean name: use 1 to 255 letters, digits, '.', '-' or '_' (clients attach with it, e.g. mount -o aname=share)")
            }
            if let first = firstIndex[export.name] {
                throw problem(at + ".name", "'\(export.name)' is already the name of exports[\(first)]\(lines["exports[\(first)].name"].map { " (line \($0))" } ?? ""): each aname names one export; rename one")
            }
            firstIndex[export.name] = index
            guard export.path.hasPrefix("/") else {
                throw problem(at + ".path", "'\(export.path)' is not an absolute path: give the directory from /, e.g. /srv/\(export.name)")
            }
            let probe = open(export.path, NINEP_O_PATH | O_DIRECTORY | O_CLOEXEC)
            guard probe >= 0 else {
                throw problem(at + ".path", "'\(export.path)' is not a directory that can be opened (\(String(cString: strerror(errno)))): create it or give another")
            }
            close(probe)
            var configuration = ExportConfiguration(name: export.name, path: export.path)
            configuration.readOnly = export.readOnly ?? false
            if let uid = export.squashUid {
                configuration.squash = SquashIdentity(uid: uid, gid: export.squashGid ?? uid)
            } else if export.squashGid != nil {
                throw problem(at + ".squash-gid", "needs squash-uid: give squash-uid too (or remove squash-gid)")
            }
            if let users = export.allowUsers {
                if users.isEmpty { throw problem(at + ".allow-users", "is empty and would refuse everyone: list uids, or remove the key to allow every user") }
                configuration.allowedUsers = Set(users)
            }
            if let text = export.access {
                guard let access = AccessMode(rawValue: text) else { throw problem(at + ".access", "'\(text)' is not one of user, client") }
                if access == .client && configuration.squash != nil {
                    throw problem(at + ".access", "client and squash-uid contradict each other: client keeps each user's ownership, a squash user replaces it; choose one")
                }
                if access == .client && geteuid() != 0 {
                    throw problem(at + ".access", "client needs root (it gives new files to their users with chown); run as root or write access: user")
                }
                configuration.access = access
            }
            result.append(configuration)
        }
        return result
    }

    static let example = """
          exports:
            - name: share
              path: /srv/share
        """
}

/// A checked config file: its values parsed (nil or empty where the file says nothing) and its
/// exports, every directory found.
struct LoadedConfig: Equatable {
    var file: ConfigFile
    var listen: [ListenAddress] = []
    var msize: UInt32?
    var memoryBudget: Int?
    var socketMode: UInt32?
    var logLevel: Logger.Level?
    var exports: [ExportConfiguration] = []
}
