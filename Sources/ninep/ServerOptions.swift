import ArgumentParser
import Glibc
import NinePClient
import NinePMemory
import NinePTransport

/// How every command reaches its server.
struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The server: tcp:HOST:PORT, HOST:PORT or unix:PATH (default: $NINEP_SERVER).", valueName: "addr"))
    var server: String?

    @Option(help: ArgumentHelp("Attach name: which export to attach (diod needs the exported path).", valueName: "name"))
    var aname = ""

    @Option(help: ArgumentHelp("User name sent in Tattach (default: your login name).", valueName: "user"))
    var uname: String?

    @Option(help: ArgumentHelp("Largest 9P message to ask for: bytes, or with a K or M suffix (4K to 16M).", valueName: "size"),
            transform: messageSize)
    var msize: UInt32 = 1 << 20

    @Option(help: ArgumentHelp("Give up on a call after this many seconds (default: wait).", valueName: "seconds"))
    var timeout: Double?

    func validate() throws {
        guard (4096...16 << 20).contains(msize) else { throw ValidationError("--msize must be between 4096 and 16777216") }
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be positive") }
    }

    /// The address from --server or NINEP_SERVER, in the client's syntax.
    func address() throws -> ListenAddress {
        guard let text = server ?? getenv("NINEP_SERVER").map({ String(cString: $0) }), !text.isEmpty else {
            throw ValidationError("no server: pass --server tcp:HOST:PORT or set NINEP_SERVER")
        }
        // Typos that would otherwise be read as a host: "tpc:HOST:PORT" (an unknown scheme)
        // and "5640" (a port with no host).
        if let colon = text.firstIndex(of: ":"), text[..<colon].allSatisfy(\.isLetter), !text[..<colon].isEmpty,
           text[text.index(after: colon)...].contains(":"), !text.hasPrefix("tcp:") && !text.hasPrefix("unix:") {
            throw ValidationError("'\(text)': unknown scheme '\(text[..<colon]):': use tcp:HOST:PORT, HOST:PORT, unix:PATH or /PATH")
        }
        if !text.isEmpty && text.allSatisfy(\.isNumber) {
            throw ValidationError("'\(text)' is a port without a host: use 127.0.0.1:\(text) (or tcp:HOST:\(text))")
        }
        do {
            return try ListenAddress(parsing: addressSpelledOut(text))
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// Connects and attaches; failures end the command with status 2 (130 after ^C, see
    /// `Ninep.main`). The attach names the user by number as well as by name
    /// (`ClientConfiguration.numericUser(for:)`): `--uname nobody` acts as nobody.
    func connect(for command: String, localIO: LocalIOMode = .disabled) async throws -> NinePClient {
        let address = try address()
        var configuration = ClientConfiguration(
            address: address, uname: uname ?? ClientConfiguration.currentUserName, aname: aname, msize: msize,
            callTimeout: timeout.map { .milliseconds(Int64($0 * 1000)) })
        // Only get, put and bench use localio (docs/LOCALIO.md), unless --no-localio: the
        // other commands move no file data worth a descriptor.
        configuration.localIO = localIO
        do {
            return try await NinePClient.connect(configuration)
        } catch let error as NinePError where error.kind == .timedOut {
            // Connecting and the handshake wait 30 s unless --timeout says otherwise.
            let seconds = timeout.map { $0 == $0.rounded() && $0 < 1e9 ? String(Int($0)) : String($0) } ?? "30"
            let hint = timeout == nil ? " (--timeout SECONDS waits more or less)" : ""
            Report.printError("ninep: \(command): \(address): timed out: the server did not answer \(error.operation == .connect ? "the connection" : "T\(error.operation.rawValue)") within \(seconds) s\(hint)")
            throw ExitCode(2)
        } catch {
            Report.failure(command, error)
            throw ExitCode(2)
        }
    }
}

/// An address as a user may write it, in `ListenAddress`'s syntax: "/PATH" is unix:/PATH,
/// "HOST:PORT" is tcp:HOST:PORT (--server, and ninep top's --metrics).
func addressSpelledOut(_ text: String) -> String {
    if text.hasPrefix("/") { return "unix:" + text }
    if !text.hasPrefix("tcp:") && !text.hasPrefix("unix:") { return "tcp:" + text }
    return text
}

/// `--msize` as bytes or with a K/M suffix ("1M", "128K"); the range is checked by the caller.
func messageSize(_ text: String) throws -> UInt32 {
    guard let bytes = MemoryPlan.parse(bytes: text), let size = UInt32(exactly: bytes) else {
        throw ValidationError("--msize '\(text)' is not a size: give bytes or K/M, e.g. 1M or 131072")
    }
    return size
}
