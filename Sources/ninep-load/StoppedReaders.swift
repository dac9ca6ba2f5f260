import Glibc
import NinePWire

/// bench-isolation's stopped clients: each connects (msize 1 MiB asked), opens big.bin and
/// sends `reads` Treads of a whole msize in one go, then never reads a reply (a `ninep get`
/// stopped with ^Z). They stay so until stdin ends or `hold` seconds pass.
enum StoppedReaders {
    static func run(endpoint: Endpoint, export: String, clients: Int, reads: Int, msize: UInt32, hold: Double) throws {
        var sessions: [RawSession] = []
        defer { for session in sessions { session.close() } }
        for _ in 0..<clients {
            let session = try RawSession.connect(endpoint, msize: msize, timeout: 10)
            sessions.append(session)
            var small: Int32 = 4096
            _ = setsockopt(session.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            try session.attach(fid: 1, aname: export, nuname: 0)
            try session.walk(fid: 1, newfid: 2, names: ["big.bin"])
            try session.lopen(fid: 2, flags: OpenFlags.readOnly)
            let count = session.msize - UInt32(NineP.readReplyOverhead)
            var frames: [UInt8] = []
            for _ in 0..<reads {
                let tag = try session.register(.tread)
                frames += try session.encode(.read(fid: 2, offset: 0, count: count), tag: tag)
            }
            // 23 bytes a Tread: they fit the socket even when nobody reads.
            try frames.withUnsafeBytes { try session.write($0, what: "Tread") }
        }
        JSON.object([("ready", .bool(true)), ("clients", .int(clients)), ("msize", .int(Int(sessions.first?.msize ?? 0)))]).emit()
        // Until the script closes our stdin (a reader thread notices), at most `hold` seconds.
        let ended = BackgroundThread(name: "stdin") { while readLine() != nil {} }
        _ = ended.join(seconds: hold)
    }
}
