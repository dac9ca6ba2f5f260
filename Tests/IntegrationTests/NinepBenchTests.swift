import Foundation
import NinePTestSupport
import Testing

/// `ninep bench`: figures in JSON, and no heap allocation per read, write or getattr after
/// warm-up, counted by the Tools/alloccount interposer (DESIGN.md promise 5, client side).
@Suite(.serialized)
struct NinepBenchTests {
    /// Compiles Tools/alloccount/alloccount.c into `directory`.
    func buildAllocationCounter(in directory: URL) throws -> String {
        let source = Paths.packageRoot.appendingPathComponent("Tools/alloccount/alloccount.c").path
        let library = directory.appendingPathComponent("alloccount.so").path
        let build = try run("/usr/bin/cc", ["-O2", "-shared", "-fPIC", "-Wall", "-o", library, source], timeout: .seconds(60))
        guard build.status == 0 else { throw TestFailure("cc alloccount.c: \(build.output)") }
        return library
    }

    func results(_ output: String) throws -> [[String: Any]] {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let results = object["results"] as? [[String: Any]]
        else { throw TestFailure("bench printed no JSON: \(output)") }
        return results
    }

    @Test func readWriteGetattrAllocateNothingPerOperation() throws {
        let root = try Paths.temporaryDirectory("ninep-bench")
        defer { try? FileManager.default.removeItem(at: root) }
        let library = try buildAllocationCounter(in: root)
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }
        var summary: [String] = []
        for concurrency in [1, 4] {
            let bench = try run("/usr/bin/env", [
                "LD_PRELOAD=\(library)", NinepCommandTests.ninep, "bench", "--server", "127.0.0.1:\(server.port)",
                "--workload", "read", "--workload", "write", "--workload", "getattr", "--size", "64k", "--file-size", "16m",
                "--concurrency", "\(concurrency)", "--warmup", "0.5", "--duration", "1", "--json", "--count-allocations",
            ], timeout: .seconds(120))
            #expect(bench.status == 0, "bench: \(bench.output)")
            for result in try results(bench.output) {
                let workload = result["workload"] as? String ?? "?"
                let operations = result["operations"] as? Int ?? 0
                let allocations = result["allocations"] as? Int ?? -1
                let latency = result["latencyMicroseconds"] as? [String: Double] ?? [:]
                let p50 = latency["p50"] ?? 0, p90 = latency["p90"] ?? 0, p99 = latency["p99"] ?? 0
                #expect(operations > 1000, "\(workload) x\(concurrency): only \(operations) operations")
                #expect(allocations == 0, "\(workload) x\(concurrency): \(allocations) heap allocations in \(operations) operations")
                #expect(p50 > 0 && p50 <= p90 && p90 <= p99, "\(workload) percentiles \(latency)")
                summary.append("\(workload) x\(concurrency): \(operations) ops, \(allocations) allocations, p50 \(p50) µs p90 \(p90) µs p99 \(p99) µs")
            }
            #expect(!FileManager.default.fileExists(atPath: export.appendingPathComponent("ninep-bench.dat").path), "the work file was left behind")
        }
        print("bench with alloccount:\n  " + summary.joined(separator: "\n  "))
    }

    @Test func textOutputAndMetadataWorkloadAgainstDiod() throws {
        let root = try Paths.temporaryDirectory("ninep-bench-diod")
        defer { try? FileManager.default.removeItem(at: root) }
        let diod = try DiodProcess(export: root.path, workDirectory: root.path)
        defer { diod.stop() }
        let port = diod.port
        let bench = try run(NinepCommandTests.ninep, [
            "bench", "--server", "127.0.0.1:\(port)", "--aname", root.path, "--workload", "metadata", "--workload", "read",
            "--file-size", "4m", "--warmup", "0.2", "--duration", "0.5",
        ], timeout: .seconds(60))
        #expect(bench.status == 0, "bench: \(bench.output)")
        // First which path the data took (TCP: never localio), then one line per workload.
        var lines = bench.output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("localio: off") == true, "bench text: \(bench.output)")
        lines.removeFirst(min(1, lines.count))
        #expect(lines.count == 2 && lines[0].hasPrefix("metadata") && lines[1].hasPrefix("read"), "bench text: \(bench.output)")
        #expect(lines.allSatisfy { $0.contains("ops/s") && $0.contains("p50") && $0.contains("p99") }, "bench text: \(bench.output)")
        print("bench against diod:\n  " + lines.joined(separator: "\n  "))
    }

    /// Runs `ninep bench --json` against a fresh ninepd on `export`; the results by workload.
    func bench(_ export: URL, root: URL, _ arguments: [String]) throws -> [[String: Any]] {
        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }
        let bench = try run(NinepCommandTests.ninep, ["bench", "--server", "127.0.0.1:\(server.port)", "--json"] + arguments, timeout: .seconds(60))
        #expect(bench.status == 0, "bench: \(bench.output)")
        return try results(bench.output)
    }

    @Test func sequentialWriteThenReadMoveTheWholeFile() throws {
        let root = try Paths.temporaryDirectory("ninep-bench-seq")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        let fileSize = 8 << 20 + 12345  // not a whole number of calls: the last one is short
        let results = try bench(export, root: root, [
            "--workload", "seqwrite", "--workload", "seqread", "--size", "1m", "--file-size", "\(fileSize)", "--concurrency", "3",
        ])
        #expect(results.map { $0["workload"] as? String } == ["seqwrite", "seqread"])
        for result in results {
            let workload = result["workload"] as? String ?? "?"
            #expect(result["bytes"] as? Int == fileSize, "\(workload) moved \(result["bytes"] ?? "nothing"), not \(fileSize) bytes")
            #expect(result["size"] as? Int == 1 << 20 - 4096, "\(workload): calls of whole 4 KiB blocks below the msize")
            #expect(result["operations"] as? Int == (fileSize + (1 << 20 - 4096) - 1) / (1 << 20 - 4096), "\(workload): \(result)")
            #expect((result["bytesPerSecond"] as? Double ?? 0) > 0, "\(workload): \(result)")
        }
        #expect(!FileManager.default.fileExists(atPath: export.appendingPathComponent("ninep-bench.dat").path), "the work file was left behind")
    }

    @Test func smallFileLoopLeavesNoFiles() throws {
        let root = try Paths.temporaryDirectory("ninep-bench-small")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export.appendingPathComponent("work"), withIntermediateDirectories: true)
        let results = try bench(export, root: root, [
            "--workload", "smallfile", "--directory", "/work", "--concurrency", "4", "--warmup", "0.2", "--duration", "1",
        ])
        let operations = results.first?["operations"] as? Int ?? 0
        #expect(results.first?["workload"] as? String == "smallfile" && operations > 20, "smallfile: \(results)")
        #expect(results.first?["bytes"] as? Int == operations * 4096, "smallfile: 4 KiB written per cycle: \(results)")
        let left = try FileManager.default.contentsOfDirectory(atPath: export.appendingPathComponent("work").path)
        #expect(left.isEmpty, "files left behind: \(left)")
    }

    @Test func readdirCountsEveryEntry() throws {
        let root = try Paths.temporaryDirectory("ninep-bench-readdir")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        let listed = export.appendingPathComponent("many")
        try FileManager.default.createDirectory(at: listed, withIntermediateDirectories: true)
        let count = 2500
        for index in 0..<count {
            #expect(FileManager.default.createFile(atPath: listed.appendingPathComponent("entry-\(index)").path, contents: nil))
        }
        let results = try bench(export, root: root, [
            "--workload", "readdir", "--listing", "/many", "--concurrency", "2", "--warmup", "0.2", "--duration", "1",
        ])
        let result = results.first ?? [:]
        let operations = result["operations"] as? Int ?? 0
        #expect(result["entriesPerListing"] as? Int == count, "readdir: \(result)")
        #expect(operations >= 2, "readdir: \(result)")
        let perSecond = result["entriesPerSecond"] as? Double ?? 0
        let expected = Double(operations * count) / (result["seconds"] as? Double ?? 1)
        #expect(abs(perSecond - expected) <= expected * 0.01, "readdir entries/s \(perSecond), expected \(expected)")
    }
}
