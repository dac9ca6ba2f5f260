import Glibc

/// One workload's figures.
struct BenchResult: Sendable {
    let workload: Workload
    let size: Int
    let concurrency: Int
    let seconds: Double
    let operations: UInt64
    /// Bytes moved (reads and writes), and entries per listing (readdir).
    let bytes: UInt64
    let entries: Int?
    let p50: UInt64
    let p90: UInt64
    let p99: UInt64
    let allocationsPerOperation: Double?
    let allocations: UInt64?

    var operationsPerSecond: Double { Double(operations) / seconds }
    var bytesPerSecond: Double { Double(bytes) / seconds }
    var entriesPerSecond: Double { operationsPerSecond * Double(entries ?? 0) }

    static func micros(_ nanoseconds: UInt64) -> String { Formatting.fixed(Double(nanoseconds) / 1000, 1) }

    var text: String {
        var line = Formatting.pad(workload.rawValue, 9, left: true)
        line += size > 0 ? " \(Formatting.size(Double(size))) x\(concurrency): " : " x\(concurrency): "
        line += "\(Formatting.fixed(operationsPerSecond, 0)) ops/s"
        if size > 0 { line += ", \(Formatting.size(bytesPerSecond))/s" }
        if workload.isSequential { line += " (\(Formatting.size(Double(bytes))) in \(Formatting.fixed(seconds, 2)) s)" }
        if let entries { line += ", \(entries) entries per listing, \(Formatting.fixed(entriesPerSecond, 0)) entries/s" }
        line += "; latency p50 \(BenchResult.micros(p50)) µs, p90 \(BenchResult.micros(p90)) µs, p99 \(BenchResult.micros(p99)) µs"
        if let allocationsPerOperation, let allocations {
            line += "; \(Formatting.fixed(allocationsPerOperation, 4)) allocations/op (\(allocations) in \(operations) ops)"
        }
        return line
    }

    var json: String {
        var fields = [
            "\"workload\":\"\(workload.rawValue)\"", "\"size\":\(size)", "\"concurrency\":\(concurrency)",
            "\"seconds\":\(Formatting.fixed(seconds, 3))", "\"operations\":\(operations)",
            "\"operationsPerSecond\":\(Formatting.fixed(operationsPerSecond, 1))", "\"bytes\":\(bytes)",
            "\"bytesPerSecond\":\(Formatting.fixed(bytesPerSecond, 0))",
            "\"latencyMicroseconds\":{\"p50\":\(BenchResult.micros(p50)),\"p90\":\(BenchResult.micros(p90)),\"p99\":\(BenchResult.micros(p99))}",
        ]
        if let entries {
            fields.append("\"entriesPerListing\":\(entries)")
            fields.append("\"entriesPerSecond\":\(Formatting.fixed(entriesPerSecond, 1))")
        }
        if let allocationsPerOperation, let allocations {
            fields.append("\"allocations\":\(allocations)")
            fields.append("\"allocationsPerOperation\":\(Formatting.fixed(allocationsPerOperation, 6))")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }
}
