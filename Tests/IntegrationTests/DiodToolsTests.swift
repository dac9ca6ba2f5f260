import Foundation
import NinePTestSupport
import Testing

/// diod's own client tools (Debian package diod) list and read from ninepd.
@Suite(.serialized)
struct DiodToolsTests {
    @Test func diodlsListsAndDiodcatReads() throws {
        let root = try Paths.temporaryDirectory("ninep-diod")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export.appendingPathComponent("dir"), withIntermediateDirectories: true)
        var expectedNames: Set<String> = ["dir"]
        for index in 0..<50 {
            let name = "file-\(index).txt"
            try Data("content of \(name)\n".utf8).write(to: export.appendingPathComponent(name))
            expectedNames.insert(name)
        }
        // A binary file larger than diodcat's msize, so the read spans many Tread calls.
        var generator = SystemRandomNumberGenerator()
        let big = Data((0..<(3 * 1024 * 1024 + 17)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try big.write(to: export.appendingPathComponent("big.bin"))
        expectedNames.insert("big.bin")

        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }
        let address = "127.0.0.1:\(server.port)"

        let listing = try run("/usr/sbin/diodls", ["-s", address, "-a", export.path, "/"], timeout: .seconds(60))
        #expect(listing.status == 0, "diodls failed: \(listing.output)")
        let listed = Set(listing.output.split(separator: "\n").map(String.init).filter { !$0.contains(":") && $0 != "." && $0 != ".." })
        #expect(listed == expectedNames, "diodls listed \(listed.symmetricDifference(expectedNames)) differently")

        let long = try run("/usr/sbin/diodls", ["-s", address, "-a", export.path, "-l", "/"], timeout: .seconds(60))
        #expect(long.status == 0)
        #expect(long.output.contains("big.bin") && long.output.contains("\(big.count)"), "diodls -l did not show big.bin's size: \(long.output)")

        let small = try run("/usr/sbin/diodcat", ["-s", address, "-a", export.path, "file-7.txt"], timeout: .seconds(60))
        #expect(small.status == 0)
        #expect(small.output == "content of file-7.txt\n")

        let copy = root.appendingPathComponent("copy.bin")
        let shell = try run("/bin/sh", ["-c", "/usr/sbin/diodcat -s \(address) -a \(export.path) big.bin > \(copy.path)"], timeout: .seconds(120))
        #expect(shell.status == 0, "diodcat big.bin failed: \(shell.output)")
        #expect(try Data(contentsOf: copy) == big, "diodcat returned different bytes for big.bin")

        #expect(server.stop() == 0, "ninepd did not exit cleanly on SIGTERM; log: \(server.logText)")
    }
}
