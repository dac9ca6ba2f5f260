import CNinePShims
import Glibc

/// A connected pair of unix stream sockets made on a thread whose effective uid is `uid`, so
/// that SO_PEERCRED of either end names that user (the kernel records the creating thread's
/// credentials). The thread ends right after; the process keeps its own credentials.
public func makeSocketPair(asUser uid: UInt32) throws -> (client: Int32, server: Int32) {
    let job = SocketPairJob(uid: uid)
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        Unmanaged<SocketPairJob>.fromOpaque(raw!).takeUnretainedValue().run()
        return nil
    }, Unmanaged.passUnretained(job).toOpaque())
    guard rc == 0 else { throw WireClientError.unexpected("pthread_create: \(rc)") }
    pthread_join(thread, nil)
    return try job.result!.get()
}

private final class SocketPairJob {
    let uid: UInt32
    var result: Result<(client: Int32, server: Int32), any Error>?
    init(uid: UInt32) { self.uid = uid }

    func run() {
        guard ninep_thread_set_euid(uid) == 0 else {
            result = .failure(WireClientError.unexpected("setresuid(-1, \(uid), -1): errno \(errno)"))
            return
        }
        result = Result { try makeSocketPair() }
    }
}

/// The 32 bytes of a localio nonce memfd, or nil when it is not one (not sealed, short).
public func readNonceMemfd(_ fd: Int32) -> [UInt8]? {
    let seals = ninep_memfd_seals(fd)
    guard seals >= 0, seals & NINEP_SEALS_REQUIRED == NINEP_SEALS_REQUIRED else { return nil }
    var bytes = [UInt8](repeating: 0, count: 33)
    let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 33, 0) }
    return n == 32 ? Array(bytes[0..<32]) : nil
}
