import CNinePShims
import Glibc
import NinePTransport
import NinePWire

/// Tversion with the localio extension, and the locality proof (docs/LOCALIO.md), on the
/// connecting thread before the reader starts.
enum LocalIONegotiation {
    /// The msize, and whether the session negotiated localio and proved locality. Offers
    /// `NineP.versionLocalIO` only on a unix socket with localio not disabled; any answer but
    /// the extension (Rlerror: diod; "unknown": QEMU; "9P2000.L") falls back to a plain
    /// 9P2000.L Tversion on the same connection when the first answer was not already that.
    static func negotiate(fd: Int32, configuration: ClientConfiguration) throws(NinePError) -> (msize: UInt32, localIO: Bool) {
        let mode = configuration.localIO
        guard mode != .disabled else {
            return (try ClientConnection.negotiateVersion(fd: fd, msize: configuration.msize), false)
        }
        guard ninep_is_unix_socket(fd) == 1 else {
            if mode == .required { throw unavailable("the connection is not a unix socket") }
            return (try ClientConnection.negotiateVersion(fd: fd, msize: configuration.msize), false)
        }
        let exchange = try Exchange(fd: fd)
        let answer = try exchange.version(msize: configuration.msize)
        switch answer {
        case let .extended(msize, memfd):
            let proven = exchange.prove(memfd: memfd)
            close(memfd)
            if !proven && mode == .required { throw unavailable("the server refused the locality proof") }
            return (msize, proven)
        case let .plain(msize):
            if mode == .required { throw unavailable("the server does not offer localio") }
            return (msize, false)
        case .refused:
            if mode == .required { throw unavailable("the server does not offer localio") }
            return (try ClientConnection.negotiateVersion(fd: fd, msize: configuration.msize), false)
        }
    }

    static func unavailable(_ why: String) -> NinePError {
        NinePError(.protocolViolation, errno: EPROTONOSUPPORT, operation: .version, message: "localio required, but \(why)")
    }

    /// One frame out, one frame in, with the descriptors that come along.
    private final class Exchange {
        let fd: Int32
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 16)
        let inbox = DescriptorInbox(capacity: 4)

        init(fd: Int32) throws(NinePError) { self.fd = fd }

        deinit { buffer.deallocate() }

        enum VersionAnswer {
            case extended(msize: UInt32, memfd: Int32)
            case plain(msize: UInt32)
            /// Rlerror, Rerror or "unknown": ask again for plain 9P2000.L.
            case refused
        }

        func version(msize: UInt32) throws(NinePError) -> VersionAnswer {
            let message = try call(.version(msize: msize, version: ByteView(static: NineP.versionLocalIO)), tag: NineP.noTag, operation: .version)
            defer { inbox.closeAll() }
            switch message.response {
            case let .version(offered, version):
                guard offered >= 4096, offered <= msize else {
                    if version.equals("unknown") { return .refused }
                    throw .protocolViolation(.version)
                }
                if version.equals(NineP.versionLocalIO), let memfd = inbox.take() { return .extended(msize: offered, memfd: memfd) }
                if version.equals("9P2000.L") { return .plain(msize: offered) }
                if version.equals("unknown") { return .refused }
                throw NinePError(.protocolViolation, errno: EPROTONOSUPPORT, operation: .version)
            case .lerror, .error:
                return .refused
            default:
                throw .protocolViolation(.version)
            }
        }

        /// Reads the nonce from the sealed memfd and echoes it; true when the server accepted.
        func prove(memfd: Int32) -> Bool {
            // A memfd that could still change is not the server's nonce.
            let seals = ninep_memfd_seals(memfd)
            guard seals >= 0, seals & NINEP_SEALS_REQUIRED == NINEP_SEALS_REQUIRED else { return false }
            let size = NineP.localNonceSize
            let nonce = UnsafeMutableRawBufferPointer(rebasing: buffer[4096..<(4096 + size)])
            guard pread(memfd, nonce.baseAddress, size, 0) == size else { return false }
            guard let message = try? call(.localproof(nonce: LocalNonce(ByteView(UnsafeRawBufferPointer(nonce)))), tag: 0, operation: .version) else { return false }
            inbox.closeAll()
            if case .localproof = message.response { return true }
            return false
        }

        private func call(_ request: Request, tag: UInt16, operation: NinePOperation) throws(NinePError) -> RMessage {
            var writer = WireWriter(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<4096]))
            guard let length = try? request.encode(tag: tag, into: &writer),
                  SocketIO.writeFully(fd, UnsafeRawBufferPointer(rebasing: buffer[0..<length])) == .complete
            else { throw .connectionLost(operation) }
            let header = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<NineP.headerSize])
            let outcome = SocketIO.readFully(fd, into: header, collecting: inbox)
            guard outcome == .complete else { throw outcome == .stalled ? .timedOut(operation) : .connectionLost(operation) }
            guard let frame = try? FrameHeader.decode(UnsafeRawBufferPointer(header), msize: 4096), frame.tag == tag else {
                throw .protocolViolation(operation)
            }
            let body = UnsafeMutableRawBufferPointer(rebasing: buffer[NineP.headerSize..<Int(frame.size)])
            let bodyOutcome = SocketIO.readFully(fd, into: body, collecting: inbox)
            guard bodyOutcome == .complete else { throw bodyOutcome == .stalled ? .timedOut(operation) : .connectionLost(operation) }
            do {
                return try RMessage.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<Int(frame.size)]), msize: 4096)
            } catch {
                throw .protocolViolation(operation)
            }
        }
    }
}
