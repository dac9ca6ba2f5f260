import Glibc
import NinePClient
@testable import NinePFuse
import NinePTestSupport
import NinePTransport
import NinePWire

/// Plays the kernel's side for `NinePFileSystem` without /dev/fuse: requests encoded as the
/// kernel lays them out go through `dispatch` into a slot, against ninepd's library on a
/// socketpair; replies are decoded back. Runs anywhere, as any user.
final class FakeKernel {
    let server: TestServer
    let client: NinePClient
    let fileSystem: NinePFileSystem
    let slot = FuseSlot(index: 0, requestBytes: 256 * 1024, replyBytes: 256 * 1024)
    var unique: UInt64 = 100

    /// `server`: one configured by the test (default: ninepd's defaults, access=user).
    init(options: NinePFileSystemOptions = NinePFileSystemOptions(), server given: TestServer? = nil) async throws {
        server = try given ?? TestServer()
        let configuration = ClientConfiguration(address: .unix(path: "socketpair"), uname: "root", aname: "", uid: 0, msize: 128 * 1024, callTimeout: .seconds(20))
        client = try await NinePClient.connect(configuration, connectedSocket: try server.connectedSocket())
        let root = try await client.walk("/")
        fileSystem = NinePFileSystem(client: client, root: root, options: options, log: { _ in })
    }

    deinit {
        fileSystem.stop()
        client.close()
        server.shutdown()
    }

    struct Reply {
        var error: Int32
        var body: [UInt8]

        func decode<T: FuseStruct>(_: T.Type) throws -> T {
            try Array(body[0..<T.wireSize]).withUnsafeBytes { raw in try T.decode(raw) }
        }
    }

    /// One request from a process of `uid` and `gid`; the reply's errno (0: success) and body.
    func send(_ opcode: FuseOpcode, node: UInt64 = FuseProtocol.rootID, _ body: [UInt8] = [], uid: UInt32 = 0, gid: UInt32 = 0) async -> Reply {
        unique += 1
        let bytes = KernelBytes.request(opcode, unique: unique, nodeID: node, body: body)
        bytes.withUnsafeBytes { slot.request.copyMemory(from: $0) }
        slot.length = bytes.count
        let header = FuseInHeader(length: UInt32(bytes.count), opcode: opcode, unique: unique, nodeID: node, uid: uid, gid: gid, pid: 42)
        do {
            let length: Int
            do {
                length = try await fileSystem.dispatch(slot, header, layout: FuseRequest.Layout())
            } catch {
                await fileSystem.runAfterReply(slot.index)
                throw error
            }
            // A READ served from a 9P message buffer: its data follows as the slot's payload, as
            // the session's writeReply sends it.
            let payload = slot.payload.map { Array($0) } ?? []
            let out = Array(UnsafeRawBufferPointer(rebasing: slot.reply[0..<(length - payload.count)])) + payload
            fileSystem.keptReplies.replied(slot)
            // What the worker does once the reply is written (a RELEASE's clunk, a spare).
            await fileSystem.runAfterReply(slot.index)
            // An error built as a reply (not thrown) carries -errno in the out header.
            let replied = out.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
            if replied != 0 { return Reply(error: -replied, body: []) }
            return Reply(error: 0, body: Array(out[FuseOutHeader.wireSize...]))
        } catch {
            fileSystem.keptReplies.replied(slot)
            return Reply(error: fuseErrno(error), body: [])
        }
    }

    /// The header of the last request sent (for replaying what the worker does after it).
    var lastHeader: FuseInHeader {
        FuseInHeader(length: UInt32(slot.length), opcode: FuseOpcode(rawValue: slot.request.load(fromByteOffset: 4, as: UInt32.self).littleEndian), unique: unique, nodeID: slot.request.load(fromByteOffset: 16, as: UInt64.self).littleEndian, uid: 0, gid: 0, pid: 42)
    }

    func lookup(_ name: String, in parent: UInt64 = FuseProtocol.rootID) async throws -> FuseEntryOut {
        let reply = await send(.lookup, node: parent, KernelBytes.name(name))
        guard reply.error == 0 else { throw FuseFailure(reply.error) }
        return try reply.decode(FuseEntryOut.self)
    }

    func open(_ node: UInt64, flags: Int32 = O_RDONLY, directory: Bool = false) async throws -> UInt64 {
        let reply = await send(directory ? .opendir : .open, node: node, KernelBytes.struct_(FuseOpenIn(flags: UInt32(flags))))
        guard reply.error == 0 else { throw FuseFailure(reply.error) }
        return try reply.decode(FuseOpenOut.self).fh
    }
}
