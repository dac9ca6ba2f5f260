import CNinePShims
import Glibc
@testable import NinePClient
import NinePTestSupport
import NinePTransport
import NinePWire
import Testing

/// A server that speaks localio but misbehaves: it attaches a descriptor to a reply that
/// carries none (Rattach) and grants a FIFO. The client keeps neither and reads through 9P.
@Suite struct LocalIOMisbehavingServerTests {
    /// The fake's files and the paths its descriptors point to.
    final class Scene: @unchecked Sendable {
        // @unchecked Sendable: written before the server thread starts, read-only afterwards.
        let directory: TempDirectory
        var fifo: String { directory("fifo") }
        var surplus: String { directory("surplus") }
        init() throws {
            directory = try TempDirectory(prefix: "ninep-localio-fake")
            guard mkfifo(fifo, 0o600) == 0, FileManagerless.write(surplus, [1]) else { throw WireClientError.unexpected("setup: errno \(errno)") }
        }
    }

    /// Serves one client on `fd` until it hangs up.
    static func serve(_ fd: Int32, _ scene: Scene) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate(); out.deallocate(); close(fd) }
        let nonce = [UInt8](repeating: 0x5A, count: 32)
        func send(_ response: Response, tag: UInt16, attaching path: String? = nil, memfd: Bool = false) {
            var w = WireWriter(out)
            guard let length = try? response.encode(tag: tag, into: &w) else { return }
            let bytes = UnsafeRawBufferPointer(rebasing: out[0..<length])
            var attached: Int32 = -1
            if memfd { attached = nonce.withUnsafeBytes { ninep_sealed_memfd($0.baseAddress!, 32) } }
            if let path { attached = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC) }
            if attached >= 0 {
                _ = SocketIO.writeFully(fd, bytes, attaching: attached)
                close(attached)  // the fake keeps no copy
            } else {
                _ = SocketIO.writeFully(fd, bytes)
            }
        }
        while SocketIO.readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<7])) == .complete {
            guard let header = try? FrameHeader.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<7]), msize: 1 << 16),
                  SocketIO.readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[7..<Int(header.size)])) == .complete,
                  let message = try? TMessage.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<Int(header.size)]), msize: 1 << 16)
            else { return }
            let tag = message.tag
            switch message.request {
            case let .version(msize, _):
                send(.version(msize: min(msize, 1 << 16), version: ByteView(static: NineP.versionLocalIO)), tag: tag, memfd: true)
            case let .localproof(given):
                if Array(given.bytes) == nonce { send(.localproof, tag: tag) } else { send(.lerror(ecode: LinuxErrno.EACCES), tag: tag) }
            case .attach:
                // A descriptor with a reply that carries none: the client must close it.
                send(.attach(qid: Qid(type: Qid.typeDir, version: 0, path: 1)), tag: tag, attaching: scene.surplus)
            case .walk:
                var w = WireWriter(out)
                _ = try? w.beginRwalk(tag: tag)
                _ = try? w.qid(Qid(type: Qid.typeFile, version: 0, path: 2))
                let length = w.finishRwalk(count: 1)
                _ = SocketIO.writeFully(fd, UnsafeRawBufferPointer(rebasing: out[0..<length]))
            case .lopen:
                send(.lopen(qid: Qid(type: Qid.typeFile, version: 0, path: 2), iounit: 0), tag: tag)
            case .localgrant:
                // A FIFO: pread on it would wait for a writer forever.
                send(.localgrant(flags: OpenFlags.readOnly), tag: tag, attaching: scene.fifo)
            case let .read(_, offset, _):
                let data: [UInt8] = offset == 0 ? Array("via 9P".utf8) : []
                data.withUnsafeBytes { send(.read(data: ByteView($0)), tag: tag) }
            case .clunk:
                send(.clunk, tag: tag)
            default:
                send(.lerror(ecode: LinuxErrno.EOPNOTSUPP), tag: tag)
            }
        }
    }

    /// Descriptors of this process that point to `path`.
    static func descriptors(to path: String) -> Int {
        guard let directory = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            guard let fd = Int32(name) else { continue }
            if descriptorTarget(fd) == path { count += 1 }
        }
        return count
    }

    @Test func surplusDescriptorsAndNonRegularGrantsAreNotKept() async throws {
        let scene = try Scene()
        let (client, server) = try makeSocketPair()
        DaemonThread.start(name: "fake-localio") { Self.serve(server, scene) }
        var configuration = ClientConfiguration(address: .unix(path: "fake"), uname: "root", uid: 0, msize: 1 << 16, callTimeout: .seconds(10))
        configuration.localIO = .required
        let nineP = try await NinePClient.connect(configuration, connectedSocket: client)
        #expect(nineP.connection.localIO, "the proof with the fake's nonce was accepted")
        let file = try await nineP.open("/x", .read)
        #expect(!file.usesLocalIO, "a FIFO was taken as a grant")
        #expect(try await file.read(at: 0, count: 100) == Array("via 9P".utf8))
        await file.close()
        #expect(Self.descriptors(to: scene.surplus) == 0, "the descriptor sent with Rattach is still open")
        #expect(Self.descriptors(to: scene.fifo) == 0, "the FIFO granted is still open")
    }
}
