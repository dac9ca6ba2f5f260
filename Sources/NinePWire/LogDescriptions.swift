/// How wire bytes appear in logs (`--log-level trace` prints every request and reply): names
/// and payloads come from clients, and a name can hold terminal escape sequences or invalid
/// UTF-8, so a log shows them quoted, printable ASCII as it is and every other byte as \xNN,
/// and a long payload (a 1 MiB Rread) only by its start and its length.
extension ByteView: CustomDebugStringConvertible {
    /// Bytes shown before a payload is cut short.
    public static let loggedBytes = 64

    public var debugDescription: String {
        var text = "\""
        for byte in base.prefix(Self.loggedBytes) {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                text.append("\\")
                text.unicodeScalars.append(Unicode.Scalar(byte))
            case 0x20...0x7e:
                text.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789abcdef".utf8)
                text.append("\\x")
                text.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                text.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0xf)]))
            }
        }
        text.append("\"")
        if base.count > Self.loggedBytes { text.append("... (\(base.count) bytes)") }
        return text
    }
}

extension WalkNames: CustomDebugStringConvertible {
    public var debugDescription: String { "[" + map(\.debugDescription).joined(separator: ", ") + "]" }
}
