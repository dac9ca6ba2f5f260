// Read a file from any 9P2000.L server with NinePClient and write it to stdout.
//
//     swift run read-file tcp:127.0.0.1:5640 notes.txt
//
// One client is one connection; every call is async, pipelined with the others in flight, and
// cancellable (cancelling the task sends Tflush and gives control back).
import Glibc
import NinePClient

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    print("usage: read-file ADDRESS PATH   (ADDRESS: tcp:HOST:PORT or unix:PATH)")
    exit(2)
}

struct WriteFailed: Error, CustomStringConvertible {
    var description: String { "cannot write to standard output" }
}

do {
    let client = try await NinePClient.connect(to: arguments[1])
    defer { client.close() }
    let file = try await client.open(arguments[2])
    var offset: UInt64 = 0
    while true {
        // One call reads at most msize less the header room (client.maxIOSize).
        let chunk = try await file.read(at: offset, count: client.maxIOSize)
        if chunk.isEmpty { break }
        try chunk.withUnsafeBytes { bytes in
            var done = 0
            while done < bytes.count {
                let n = write(1, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw WriteFailed() }
                done += n
            }
        }
        offset += UInt64(chunk.count)
    }
    await file.close()
} catch {
    // NinePError names the operation, the path and the server's errno.
    let message = "read-file: \(error)\n"
    _ = message.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    exit(1)
}
