import NinePFuse
import NinePWire

/// Builds requests as the kernel lays them out, for the decoder tests.
enum KernelBytes {
    /// The bytes of `body` written with a FuseWriter.
    static func encode(_ capacity: Int = 4096, _ body: (inout FuseWriter) throws -> Void) rethrows -> [UInt8] {
        var storage = [UInt8](repeating: 0, count: capacity)
        let count = try storage.withUnsafeMutableBytes { raw in
            var w = FuseWriter(raw)
            try body(&w)
            return w.offset
        }
        return Array(storage[0..<count])
    }

    /// A whole request: header (with the right length) then `body`.
    static func request(_ opcode: FuseOpcode, unique: UInt64 = 7, nodeID: UInt64 = 1, body: [UInt8] = []) -> [UInt8] {
        let header = FuseInHeader(length: UInt32(FuseInHeader.wireSize + body.count), opcode: opcode, unique: unique, nodeID: nodeID, uid: 1000, gid: 100, pid: 42)
        return (try! encode { try header.write(to: &$0) }) + body
    }

    static func struct_<T: FuseStruct>(_ value: T) -> [UInt8] { try! encode { try value.write(to: &$0) } }

    /// A NUL-terminated name.
    static func name(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

    static func u64(_ v: UInt64) -> [UInt8] { try! encode { try $0.u64(v) } }
    static func u32(_ v: UInt32) -> [UInt8] { try! encode { try $0.u32(v) } }
}

/// Decodes `bytes` as one request (the buffer lives for the call).
func decodeRequest(_ bytes: [UInt8], layout: FuseRequest.Layout = .init()) throws(FuseCodecError) -> (FuseInHeader, FuseRequest, [String]) {
    var result: Result<(FuseInHeader, FuseRequest, [String]), FuseCodecError>!
    bytes.withUnsafeBytes { raw in
        do {
            let (h, r) = try FuseRequest.decode(raw, layout: layout)
            result = .success((h, r, names(of: r)))
        } catch let error as FuseCodecError {
            result = .failure(error)
        } catch {
            fatalError("untyped error")
        }
    }
    return try result.get()
}

/// The names and payloads a request carries, copied out as strings (views die with the buffer).
func names(of request: FuseRequest) -> [String] {
    switch request {
    case let .lookup(n), let .unlink(n), let .rmdir(n), let .removexattr(n): [n.makeString()]
    case let .symlink(n, t): [n.makeString(), t.makeString()]
    case let .mknod(_, n), let .mkdir(_, n), let .create(_, n), let .link(_, n), let .getxattr(_, n): [n.makeString()]
    case let .rename(_, a, b), let .rename2(_, _, a, b): [a.makeString(), b.makeString()]
    case let .write(_, d): [d.makeString()]
    case let .setxattr(_, n, v): [n.makeString(), v.makeString()]
    case let .batchForget(list): list.map { "\($0.nodeID):\($0.lookups)" }
    default: []
    }
}
