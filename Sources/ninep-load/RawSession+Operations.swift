import Glibc
import NinePWire

/// One call per 9P operation the workloads use: send, wait for that tag, check the reply.
extension RawSession {
    /// The reply to `request`, which must be its success reply.
    func rpc(_ request: TRequest) throws -> Reply {
        let reply = try wait(send(request))
        try reply.expectSuccess()
        return reply
    }

    func version() throws {
        let reply = try wait(send(.version(msize: msize), tag: NineP.noTag))
        let (negotiated, text) = try reply.expect { response -> (UInt32, String) in
            guard case let .version(msize, version) = response else { return (0, "") }
            return (msize, version.makeString())
        }
        guard text == NineP.version9P2000L else {
            throw LoadError.protocolError("server speaks \(text), not \(NineP.version9P2000L)")
        }
        guard negotiated >= 512 && negotiated <= msize else {
            throw LoadError.protocolError("server negotiated msize \(negotiated), asked \(msize)")
        }
        setNegotiated(msize: negotiated)
    }

    func attach(fid: UInt32, uname: String = "root", aname: String, nuname: UInt32) throws {
        _ = try rpc(.attach(fid: fid, uname: uname, aname: aname, nuname: nuname))
    }

    /// A walk that must reach every name (a partial walk makes no fid: ENOENT, as the kernel).
    func walk(fid: UInt32, newfid: UInt32, names: [String] = []) throws {
        let count = try rpc(.walk(fid: fid, newfid: newfid, names: names)).expect { response -> Int in
            guard case let .walk(qids) = response else { return -1 }
            return qids.count
        }
        if count != names.count { throw LoadError.rlerror(errno: UInt32(ENOENT), request: .twalk) }
    }

    func lopen(fid: UInt32, flags: UInt32) throws {
        _ = try rpc(.lopen(fid: fid, flags: flags))
    }

    func lcreate(fid: UInt32, name: String, flags: UInt32, mode: UInt32 = 0o644, gid: UInt32 = 0) throws {
        _ = try rpc(.lcreate(fid: fid, name: name, flags: flags, mode: mode, gid: gid))
    }

    /// Bytes written, as Rwrite says.
    func write(fid: UInt32, offset: UInt64, data: [UInt8]) throws -> Int {
        let reply = try data.withUnsafeBytes { try rpc(.write(fid: fid, offset: offset, data: $0)) }
        return try reply.expect { response -> Int in
            guard case let .write(count) = response else { return -1 }
            return Int(count)
        }
    }

    func read(fid: UInt32, offset: UInt64, count: UInt32) throws -> [UInt8] {
        try rpc(.read(fid: fid, offset: offset, count: count)).expect { response -> [UInt8] in
            guard case let .read(data) = response else { return [] }
            return Bytes.copy(data.base)
        }
    }

    /// The file's size from Tgetattr (basic mask).
    func getattrSize(fid: UInt32) throws -> UInt64 {
        try rpc(.getattr(fid: fid, mask: getattrBasic)).expect { response -> UInt64 in
            guard case let .getattr(attributes) = response else { return 0 }
            return attributes.size
        }
    }

    func clunk(fid: UInt32) throws {
        _ = try rpc(.clunk(fid: fid))
    }
}
