import NinePWire

/// The T-messages the load workloads send, with Swift strings and byte arrays; `encode` hands
/// them to NinePWire's encoder (Request.encode, WireWriter.twalk/twrite), so the layout of every
/// message is the codec's, not this tool's.
enum TRequest {
    case version(msize: UInt32)
    case attach(fid: UInt32, uname: String, aname: String, nuname: UInt32)
    case walk(fid: UInt32, newfid: UInt32, names: [String])
    case lopen(fid: UInt32, flags: UInt32)
    case lcreate(fid: UInt32, name: String, flags: UInt32, mode: UInt32, gid: UInt32)
    case read(fid: UInt32, offset: UInt64, count: UInt32)
    /// `data` is borrowed, not copied: it must stay valid until the frame is encoded.
    case write(fid: UInt32, offset: UInt64, data: UnsafeRawBufferPointer)
    case getattr(fid: UInt32, mask: UInt64)
    case clunk(fid: UInt32)
    case flush(oldtag: UInt16)

    var type: MessageType {
        switch self {
        case .version: .tversion
        case .attach: .tattach
        case .walk: .twalk
        case .lopen: .tlopen
        case .lcreate: .tlcreate
        case .read: .tread
        case .write: .twrite
        case .getattr: .tgetattr
        case .clunk: .tclunk
        case .flush: .tflush
        }
    }

    /// Encodes the frame at the writer's position; returns its length.
    func encode(tag: UInt16, into w: inout WireWriter) throws -> Int {
        switch self {
        case let .version(msize):
            return try withView(NineP.version9P2000L) { try Request.version(msize: msize, version: $0).encode(tag: tag, into: &w) }
        case let .attach(fid, uname, aname, nuname):
            return try withView(uname) { u in
                try withView(aname) { a in
                    try Request.attach(fid: fid, afid: NineP.noFid, uname: u, aname: a, nuname: nuname).encode(tag: tag, into: &w)
                }
            }
        case let .walk(fid, newfid, names):
            return try w.twalk(tag: tag, fid: fid, newfid: newfid, names: names)
        case let .lopen(fid, flags):
            return try Request.lopen(fid: fid, flags: flags).encode(tag: tag, into: &w)
        case let .lcreate(fid, name, flags, mode, gid):
            return try withView(name) { try Request.lcreate(fid: fid, name: $0, flags: flags, mode: mode, gid: gid).encode(tag: tag, into: &w) }
        case let .read(fid, offset, count):
            return try Request.read(fid: fid, offset: offset, count: count).encode(tag: tag, into: &w)
        case let .write(fid, offset, data):
            return try w.twrite(tag: tag, fid: fid, offset: offset, data: ByteView(data))
        case let .getattr(fid, mask):
            return try Request.getattr(fid: fid, mask: mask).encode(tag: tag, into: &w)
        case let .clunk(fid):
            return try Request.clunk(fid: fid).encode(tag: tag, into: &w)
        case let .flush(oldtag):
            return try Request.flush(oldtag: oldtag).encode(tag: tag, into: &w)
        }
    }
}

/// A ByteView of the string's UTF-8, valid inside `body` only.
private func withView<T>(_ text: String, _ body: (ByteView) throws -> T) throws -> T {
    var text = text
    return try text.withUTF8 { try body(ByteView(UnsafeRawBufferPointer($0))) }
}

/// Linux open flags as 9P2000.L carries them (P9_DOTL_*).
enum OpenFlags {
    static let readOnly: UInt32 = 0, readWrite: UInt32 = 2
    static let create: UInt32 = 0o100, truncate: UInt32 = 0o1000
}

/// Tgetattr's P9_GETATTR_BASIC.
let getattrBasic: UInt64 = 0x7FF
