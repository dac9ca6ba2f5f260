import ArgumentParser
import NinePClient

/// The options `get` and `put` share: how many calls are in flight and whether to draw progress.
struct TransferOptions: ParsableArguments {
    @Option(help: "Calls in flight at once (1 to 256), each one message of up to the msize.") var window = 8
    @Option(help: "Progress bar: auto (on a terminal, for 1 MiB or more), always, never.") var progress: ProgressMode = .auto
    @Flag(help: "Move the data by 9P even when ninepd shares this host (no localio descriptor; docs/LOCALIO.md).") var noLocalio = false

    /// localio where the server offers it (a unix socket to ninepd), unless --no-localio.
    var localIO: LocalIOMode { noLocalio ? .disabled : .automatic }

    func validate() throws {
        guard (1...256).contains(window) else { throw ValidationError("--window must be between 1 and 256") }
    }
}

extension ProgressMode: ExpressibleByArgument {}
