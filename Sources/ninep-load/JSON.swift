import Glibc
import Synchronization

/// Lines from several client threads must not interleave.
private let outputLock = Mutex(())

/// The results the scripts read: one JSON value per line on stdout (no Foundation needed).
enum JSON {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    var rendered: String {
        switch self {
        case let .string(text): return JSON.quoted(text)
        case let .int(value): return String(value)
        case let .double(value): return value.isFinite ? String(value) : "null"
        case let .bool(value): return value ? "true" : "false"
        case .null: return "null"
        case let .array(items): return "[" + items.map(\.rendered).joined(separator: ", ") + "]"
        case let .object(fields):
            return "{" + fields.map { JSON.quoted($0.0) + ": " + $0.1.rendered }.joined(separator: ", ") + "}"
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Prints one line and flushes: the reading script waits for it.
    func emit() {
        let line = rendered
        outputLock.withLock { _ in writeLine(line, to: 1) }
    }

    static func strings(_ items: [String]) -> JSON { .array(items.map { .string($0) }) }
}

/// Writes `line` and a newline to a file descriptor straight away (no stdio buffer: the reading
/// script waits for each line).
func writeLine(_ line: String, to fd: Int32) {
    var bytes = Array(line.utf8)
    bytes.append(UInt8(ascii: "\n"))
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        if n > 0 {
            done += n
        } else if n < 0 && errno == EINTR {
            continue
        } else {
            return
        }
    }
}
