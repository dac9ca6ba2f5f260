// Serve a directory over 9P2000.L from your own program.
//
//     swift run serve-directory /srv/share tcp:127.0.0.1:5640
//
// The server owns its threads (workers, one reader per connection) and its memory (fixed
// pools sized from the configuration, allocated at start); your program only configures it,
// starts it, and shuts it down. Here: until stdin closes or a line "quit" is read.
import Glibc
import Logging
import NinePServer
import NinePTransport

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    print("usage: serve-directory DIR [tcp:HOST:PORT | unix:PATH]")
    exit(2)
}
let address: ListenAddress
do {
    address = try ListenAddress(parsing: arguments.count > 2 ? arguments[2] : "tcp:127.0.0.1:5640")
} catch {
    print("serve-directory: \(error)")
    exit(2)
}

var configuration = ServerConfiguration(exportPath: arguments[1], listen: [address])
configuration.workerThreads = 4  // a small embedded server; the memory plan follows from it
configuration.maxConnections = 8

let logger = Logger(label: "serve-directory")
let server: Server
do {
    server = try Server(configuration: configuration, logger: logger)
} catch {
    print("serve-directory: \(error)")  // e.g. the export is not a directory
    exit(1)
}
server.start()
// With port 0 the kernel picks a free port: boundAddresses says which.
// Written unbuffered: a script waits for this line.
let ready = "serving \(arguments[1]) on \(server.boundAddresses.map(\.description).joined(separator: ", "))\n"
_ = ready.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }

while let line = readLine(), line != "quit" {}
server.shutdown()
print("stopped")
