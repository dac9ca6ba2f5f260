import Glibc

/// A one-line progress bar on standard error, drawn only when standard error is a terminal
/// (nothing goes into pipes or logs) and only for transfers of at least 1 MiB.
struct Progress {
    let total: UInt64
    let label: String
    let enabled: Bool
    private var done: UInt64 = 0
    private let started = ContinuousClock.now
    private var lastDrawn = ContinuousClock.now - .seconds(1)

    init(total: UInt64, label: String, mode: ProgressMode) {
        self.total = total
        self.label = label
        switch mode {
        case .always: enabled = true
        case .never: enabled = false
        case .auto: enabled = isatty(STDERR_FILENO) == 1 && total >= 1 << 20
        }
    }

    mutating func advance(by bytes: Int) {
        done += UInt64(bytes)
        guard enabled else { return }
        let now = ContinuousClock.now
        if now - lastDrawn >= .milliseconds(100) || done >= total {
            lastDrawn = now
            draw(now)
        }
    }

    mutating func finish() {
        guard enabled else { return }
        draw(.now)
        Report.printError("")
    }

    private func draw(_ now: ContinuousClock.Instant) {
        let fraction = total == 0 ? 1 : min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = Double((now - started).components.seconds) + Double((now - started).components.attoseconds) / 1e18
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = "\r\(label) [\(bar)] \(Formatting.pad(String(Int(fraction * 100)), 3))% \(Formatting.size(Double(done)))/\(Formatting.size(Double(total))) \(Formatting.size(rate))/s   "
        var text = line
        _ = text.withUTF8 { writeAll(STDERR_FILENO, UnsafeRawBufferPointer($0)) }
    }
}

enum ProgressMode: String, CaseIterable {
    case auto, always, never
}
