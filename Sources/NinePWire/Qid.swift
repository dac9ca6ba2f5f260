/// The server's identity of a file: 13 bytes on the wire (type[1] version[4] path[8]).
@frozen
public struct Qid: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var type: UInt8
    public var version: UInt32
    public var path: UInt64

    @inlinable
    public init(type: UInt8, version: UInt32, path: UInt64) {
        self.type = type
        self.version = version
        self.path = path
    }

    public static let wireSize = 13

    public static let typeDir: UInt8 = 0x80
    public static let typeAppend: UInt8 = 0x40
    public static let typeExclusive: UInt8 = 0x20
    public static let typeMount: UInt8 = 0x10
    public static let typeAuth: UInt8 = 0x08
    public static let typeTemporary: UInt8 = 0x04
    public static let typeSymlink: UInt8 = 0x02
    public static let typeLink: UInt8 = 0x01
    public static let typeFile: UInt8 = 0x00

    public var isDirectory: Bool { type & Qid.typeDir != 0 }
    public var isSymlink: Bool { type & Qid.typeSymlink != 0 }

    public var description: String { "qid(type: 0x\(String(type, radix: 16)), version: \(version), path: \(path))" }
}
