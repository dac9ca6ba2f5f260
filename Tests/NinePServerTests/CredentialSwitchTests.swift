import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// A worker whose switch to the attaching user's credentials did not take effect must fail
/// the request (EPERM), never serve it with the identity it still has. The switch is made to
/// fail by starting the server on a thread without CAP_SETUID (setfsuid then keeps fsuid 0
/// and says nothing) or CAP_SETGID (setgroups fails, setfsgid keeps fsgid 0): its worker
/// threads inherit that.
@Suite struct CredentialSwitchTests {
    static let capSetgid = 6
    static let capSetuid = 7

    @Test(arguments: [CredentialSwitchTests.capSetuid, CredentialSwitchTests.capSetgid])
    func aSwitchThatDidNotTakeEffectFailsTheRequest(capability: Int) throws {
        let s = try onThreadWithout(capability: capability) { try TestServer() }
        defer { s.shutdown() }
        // Readable by root and by group root: what a worker still running as fsuid 0, or
        // with fsgid 0, would hand out.
        chmod(s.path, 0o750)
        let secret = Array("root only".utf8)
        makeFile(s("private"), secret, mode: 0o640)
        let user = try s.session(uid: 1000)
        for round in 0..<3 {
            let fid = UInt32(10 + round)
            let leaked = try? { () throws -> [UInt8] in
                try user.walk(0, fid, ["private"])
                try user.lopen(fid, OpenFlags.readOnly)
                return try user.read(fid, offset: 0, count: 100)
            }()
            #expect(leaked == nil, "round \(round): user 1000 read \(leaked.map { String(decoding: $0, as: UTF8.self) } ?? "")")
            #expect(errnoOf { try user.walk(0, fid + 100, ["private"]) } == LinuxErrno.EPERM, "round \(round)")
            #expect(errnoOf { try user.getattr(0) } == LinuxErrno.EPERM, "round \(round)")
        }
        if capability == Self.capSetuid {
            // Root needs no fsuid change: its requests are served.
            let root = try s.session()
            try root.walk(0, 1, ["private"])
            try root.lopen(1, OpenFlags.readOnly)
            #expect(try root.read(1, offset: 0, count: 100) == secret)
        }
    }
}
