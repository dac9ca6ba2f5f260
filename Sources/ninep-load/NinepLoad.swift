import ArgumentParser
import Glibc

/// The client side of the load and fault-injection scripts (scripts/malloc-failure,
/// memory-pressure, bench-allocs, bench-isolation), on the project's own codec: the scripts keep
/// the orchestration (servers, cgroups, the malloc shim, reports) and read this tool's JSON.
/// A developer tool, not the user's `ninep`: it sends raw frames with chosen tags, keeps
/// clients that never read, and takes commands from the script on stdin.
@main
struct NinepLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ninep-load",
        abstract: "Raw 9P2000.L load clients for the scripts in scripts/ (JSON lines on stdout).",
        discussion: "A developer tool, not the user's `ninep`: it sends frames with chosen tags, keeps clients that "
            + "never read their replies, and takes its steps from the script that runs it (commands on stdin, one JSON "
            + "line answers each). Every wait has a timeout and --max-seconds ends any run. Addresses: 127.0.0.0/8 or "
            + "unix sockets only.",
        subcommands: [MallocFailure.self, Pressure.self, Allocations.self, StoppedReadersCommand.self]
    )
}

/// What every workload needs: the server, the export to attach, the msize to ask for, a bound.
struct ServerOptions: ParsableArguments {
    @Option(help: "tcp:127.0.0.1:PORT (loopback only) or unix:PATH")
    var server: String
    @Option(help: "Attach name (the export path for diod; empty: ninepd's export)")
    var aname = ""
    @Option(help: "msize to ask for")
    var msize: UInt32 = 1 << 20
    @Option(help: "End the process (status 3) after this many seconds, whatever it is doing")
    var maxSeconds: Double = 1800

    func endpoint() throws -> Endpoint { try Endpoint(server) }
}

/// Prints a setup failure as the JSON line the script waits for, and exits 2.
func setupFailed(_ error: any Error) -> Never {
    JSON.object([("error", .string("\(error)"))]).emit()
    exit(2)
}

struct MallocFailure: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "malloc-failure",
        abstract: "Steady loops, connection and fid probes for scripts/malloc-failure (commands on stdin).",
        discussion: "Commands: start, failing on|off, status, probe-connections N, probe-fids N, check-fids, stop, "
            + "iterate clean|all (see MallocFailureSession.swift)."
    )
    @OptionGroup var options: ServerOptions
    @Option(help: "Steady-loop connections") var connections = 4
    @Option(help: "Iterations per loop before it counts as warm") var warmup = 100

    func run() throws {
        Control.startWatchdog(seconds: options.maxSeconds, name: "malloc-failure")
        let session: MallocFailureSession
        do {
            session = try MallocFailureSession(endpoint: options.endpoint(), export: options.aname, msize: options.msize,
                                               connections: connections, warmup: warmup)
        } catch {
            setupFailed(error)
        }
        session.serve()
    }
}

struct Pressure: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "memory-pressure's clients: write -> read -> compare streams until --seconds; one JSON line per connection."
    )
    @OptionGroup var options: ServerOptions
    @Option var connections = 16
    @Option(help: "Streams in flight per connection") var depth = 16
    @Option(help: "Seconds the streams go on (then the requests in flight finish)") var seconds = 60.0
    @Option(help: "A reply (or a send) later than this loses the connection") var timeout = 30.0

    func run() throws {
        Control.startWatchdog(seconds: options.maxSeconds, name: "pressure")
        let endpoint = try options.endpoint()
        let deadline = monotonicSeconds() + seconds
        let threads = (0..<connections).map { index in
            let client = PressureClient(index: index, endpoint: endpoint, export: options.aname, msize: options.msize,
                                        depth: depth, deadline: deadline, timeout: timeout)
            return BackgroundThread(name: "client-\(index)") { client.run().emit() }
        }
        let bound = deadline + timeout + 20
        for thread in threads { _ = thread.join(seconds: max(0, bound - monotonicSeconds())) }
    }
}

struct Allocations: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allocs",
        abstract: "bench-allocs' connection: batches of one message type on command (stdin).",
        discussion: "Commands: walk FIRST N, clunk FIRST N, lopen FIRST N, read SIZE N, write SIZE N, getattr N, "
            + "flush OLDTAG N; each answers once every reply is in."
    )
    @OptionGroup var options: ServerOptions
    @Option(help: "Requests in flight") var depth = 1
    @Option(help: "Size of the large writes (bench.dat is at least this long)") var large = 128 * 1024

    func run() throws {
        Control.startWatchdog(seconds: options.maxSeconds, name: "allocs")
        let session: AllocationSession
        do {
            session = try AllocationSession(endpoint: options.endpoint(), export: options.aname, msize: options.msize,
                                            depth: depth, large: large)
        } catch {
            setupFailed(error)
        }
        session.serve()
    }
}

struct StoppedReadersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stopped-readers",
        abstract: "Clients that send full-msize Treads of big.bin and never read a reply, until stdin ends."
    )
    @OptionGroup var options: ServerOptions
    @Option var clients = 1
    @Option(help: "Treads each client sends") var reads = 64
    @Option(help: "Seconds to hold them at most") var hold = 600.0

    func run() throws {
        Control.startWatchdog(seconds: options.maxSeconds, name: "stopped-readers")
        do {
            try StoppedReaders.run(endpoint: options.endpoint(), export: options.aname, clients: clients, reads: reads,
                                   msize: options.msize, hold: hold)
        } catch {
            setupFailed(error)
        }
    }
}
