import Foundation
import NinePTestSupport
import Testing

/// The `ninep` command against a ninepd process and against diod: what a shell user sees
/// (output, messages, exit status), and a 1 GiB put/get round trip.
@Suite(.serialized)
struct NinepCommandTests {
    /// The ninep binary built next to the test bundle.
    static var ninep: String { Paths.ninepd.deletingLastPathComponent().appendingPathComponent("ninep").path }

    func ninep(_ arguments: [String], timeout: Duration = .seconds(120)) throws -> (status: Int32, output: String) {
        try run(Self.ninep, arguments, timeout: timeout)
    }

    @Test func shellCommandsAgainstNinepd() throws {
        let root = try Paths.temporaryDirectory("ninep-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }
        try commandBattery(server: ["--server", "127.0.0.1:\(server.port)"], export: export, scratch: root)
    }

    @Test func shellCommandsAgainstDiod() throws {
        let root = try Paths.temporaryDirectory("ninep-cli-diod")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        let diod = try DiodProcess(export: export.path, workDirectory: root.path, log: root.appendingPathComponent("diod.log").path)
        defer { diod.stop() }
        try commandBattery(server: ["--server", diod.address, "--aname", export.path], export: export, scratch: root)
    }

    func commandBattery(server: [String], export: URL, scratch: URL) throws {
        try Data("hello\n".utf8).write(to: export.appendingPathComponent("hello.txt"))

        var result = try ninep(["mkdir", "-p", "/a/b/c"] + server)
        #expect(result.status == 0 && result.output.isEmpty, "mkdir -p: \(result.output)")
        #expect(FileManager.default.fileExists(atPath: export.appendingPathComponent("a/b/c").path))

        result = try ninep(["cat", "/hello.txt"] + server)
        #expect(result.status == 0 && result.output == "hello\n", "cat: \(result.output)")

        // Symbolic links: relative targets are followed (through a chain, from the link's
        // directory), an absolute target is named in the error, a loop ends in ELOOP.
        try FileManager.default.createSymbolicLink(atPath: export.appendingPathComponent("a/up").path, withDestinationPath: "../hello.txt")
        try FileManager.default.createSymbolicLink(atPath: export.appendingPathComponent("chain").path, withDestinationPath: "a/up")
        try FileManager.default.createSymbolicLink(atPath: export.appendingPathComponent("abs").path, withDestinationPath: "/etc/hostname")
        try FileManager.default.createSymbolicLink(atPath: export.appendingPathComponent("loop").path, withDestinationPath: "loop")
        result = try ninep(["cat", "/chain"] + server)
        #expect(result.status == 0 && result.output == "hello\n", "cat of a chain of relative links: \(result.output)")
        result = try ninep(["cat", "/abs"] + server)
        #expect(result.status == 1 && result.output.contains("symbolic link to '/etc/hostname'"), "cat of an absolute link: \(result.output)")
        result = try ninep(["cat", "/loop"] + server)
        #expect(result.status == 1 && result.output.contains("Too many levels of symbolic links"), "cat of a loop: \(result.output)")
        let followed = scratch.appendingPathComponent("followed.txt")
        result = try ninep(["get", "/chain", followed.path] + server)
        #expect(result.status == 0 && (try? String(contentsOf: followed, encoding: .utf8)) == "hello\n", "get of a link: \(result.output)")
        for name in ["a/up", "chain", "abs", "loop"] { try FileManager.default.removeItem(at: export.appendingPathComponent(name)) }

        // put/get of a few MiB, through a remote directory name and a local directory name.
        let local = scratch.appendingPathComponent("blob.bin")
        let blob = Data((0..<(3 << 20) + 5).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ ($0 >> 12)) })
        try blob.write(to: local)
        result = try ninep(["put", local.path, "/a/"] + server)
        #expect(result.status == 0 && result.output.isEmpty, "put is silent when not on a terminal: \(result.output)")
        #expect(try Data(contentsOf: export.appendingPathComponent("a/blob.bin")) == blob)
        let back = scratch.appendingPathComponent("back")
        try FileManager.default.createDirectory(at: back, withIntermediateDirectories: true)
        result = try ninep(["get", "/a/blob.bin", back.path] + server)
        #expect(result.status == 0)
        #expect(try Data(contentsOf: back.appendingPathComponent("blob.bin")) == blob)

        result = try ninep(["ls", "/"] + server)
        #expect(result.status == 0 && result.output == "a\nhello.txt\n", "ls: \(result.output)")
        result = try ninep(["ls", "-l", "/a"] + server)
        #expect(result.status == 0 && result.output.contains("-rw-r--r--") && result.output.contains("\(blob.count)") && result.output.contains("drwx"), "ls -l: \(result.output)")
        result = try ninep(["ls", "-R", "/a"] + server)
        #expect(result.status == 0 && result.output.contains("/a/b:\nc\n") && result.output.contains("/a/b/c:"), "ls -R: \(result.output)")
        result = try ninep(["stat", "/a/blob.bin"] + server)
        #expect(result.status == 0 && result.output.contains("Size: \(blob.count)") && result.output.contains("regular file"), "stat: \(result.output)")

        result = try ninep(["mv", "/a/blob.bin", "/a/b/"] + server)
        #expect(result.status == 0 && FileManager.default.fileExists(atPath: export.appendingPathComponent("a/b/blob.bin").path))
        result = try ninep(["ln", "-s", "../hello.txt", "/a/link"] + server)
        #expect(result.status == 0 && (try? FileManager.default.destinationOfSymbolicLink(atPath: export.appendingPathComponent("a/link").path)) == "../hello.txt")
        result = try ninep(["ln", "/hello.txt", "/a/hard"] + server)
        let hard = try Data(contentsOf: export.appendingPathComponent("a/hard"))
        #expect(result.status == 0 && hard == Data("hello\n".utf8))
        result = try ninep(["ls", "-l", "/a"] + server)
        #expect(result.output.contains("link -> ../hello.txt"), "ls -l shows the link target: \(result.output)")

        result = try ninep(["df"] + server)
        #expect(result.status == 0 && result.output.contains("Use%") && result.output.contains(" /\n"), "df: \(result.output)")

        // Errors as a shell user expects them, with exit status 1.
        result = try ninep(["cat", "/a/nope"] + server)
        #expect(result.status == 1 && result.output == "ninep: cat: /a/nope: No such file or directory\n", "cat of a missing file: \(result.output)")
        result = try ninep(["rm", "/a"] + server)
        #expect(result.status == 1 && result.output == "ninep: rm: /a: Is a directory\n", "rm of a directory: \(result.output)")
        result = try ninep(["mkdir", "/a"] + server)
        #expect(result.status == 1 && result.output == "ninep: mkdir: /a: File exists\n", "mkdir of an existing directory: \(result.output)")
        // The export root is refused however it is spelled, and nothing is removed.
        for root in ["/", ".", "/a/.."] {
            result = try ninep(["rm", "-r", root] + server)
            #expect(result.status == 1 && result.output.contains("is the export root") && result.output.contains("--no-preserve-root"),
                    "rm -r \(root): \(result.output)")
            #expect(FileManager.default.fileExists(atPath: export.appendingPathComponent("hello.txt").path), "rm -r \(root) removed files")
        }
        result = try ninep(["rm", "-r", "/a"] + server)
        #expect(result.status == 0 && !FileManager.default.fileExists(atPath: export.appendingPathComponent("a").path), "rm -r: \(result.output)")
        result = try ninep(["ls", "/"] + server)
        #expect(result.output == "hello.txt\n")

        // Asked for explicitly, everything in the root goes; the root itself stays.
        result = try ninep(["mkdir", "-p", "/x/y"] + server)
        result = try ninep(["rm", "-r", "--no-preserve-root", "/"] + server)
        #expect(result.status == 0, "rm -r --no-preserve-root /: \(result.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: export.path).isEmpty, "the export is not empty")
    }

    @Test func addressFromEnvironmentAndExitStatusOfConnectionProblems() throws {
        let root = try Paths.temporaryDirectory("ninep-cli-env")
        defer { try? FileManager.default.removeItem(at: root) }
        try Data("x".utf8).write(to: root.appendingPathComponent("x"))
        // Sizes take suffixes on both sides: ninepd offers 64K, ninep asks for 128K, 64K is agreed.
        let server = try NinepdProcess(export: root, extraArguments: ["--msize", "64K"], logDirectory: root)
        defer { _ = server.stop() }
        // The start-up line follows the listener by a moment.
        #expect(waitUntil(within: .seconds(10), pollingEvery: .milliseconds(20)) { server.logText.contains("msize 65536") },
                "ninepd --msize 64K: \(server.logText.suffix(600))")
        var result = try ninep(["cat", "/x", "--msize", "128K", "--server", "127.0.0.1:\(server.port)"])
        #expect(result.status == 0 && result.output == "x", "--msize 128K: \(result.output)")
        result = try ninep(["cat", "/x", "--msize", "1X", "--server", "127.0.0.1:\(server.port)"])
        #expect(result.status == 64 && result.output.contains("--msize '1X' is not a size"), "--msize 1X: \(result.output)")
        result = try run("/usr/bin/env", ["NINEP_SERVER=tcp:127.0.0.1:\(server.port)", Self.ninep, "cat", "/x"])
        #expect(result.status == 0 && result.output == "x", "NINEP_SERVER: \(result.output)")
        let closed = try freeLoopbackPort()
        result = try ninep(["ls", "/", "--server", "127.0.0.1:\(closed)"])
        #expect(result.status == 2 && result.output.hasPrefix("ninep: ls: tcp:127.0.0.1:\(closed): Connection refused"), "unreachable server: \(result.output)")
        result = try run("/usr/bin/env", ["-u", "NINEP_SERVER", Self.ninep, "ls", "/"])
        #expect(result.status == 64 && result.output.contains("no server"), "no server given: \(result.output)")
        // Typos get a message that names what is wrong and what to write.
        result = try ninep(["ls", "/", "--server", "tpc:127.0.0.1:\(server.port)"])
        #expect(result.status == 64 && result.output.contains("unknown scheme 'tpc:'") && result.output.contains("tcp:HOST:PORT"), "tpc: \(result.output)")
        result = try ninep(["ls", "/", "--server", "\(server.port)"])
        #expect(result.status == 64 && result.output.contains("port without a host") && result.output.contains("127.0.0.1:\(server.port)"), "bare port: \(result.output)")
        // What still works: HOST:PORT, with a name.
        result = try ninep(["cat", "/x", "--server", "localhost:\(server.port)"])
        #expect(result.status == 0 && result.output == "x", "localhost:PORT: \(result.output)")
    }

    @Test func interruptFlushesABlockedCatAndExits130() throws {
        let root = try Paths.temporaryDirectory("ninep-cli-int")
        defer { try? FileManager.default.removeItem(at: root) }
        let fifo = root.appendingPathComponent("fifo").path
        #expect(mkfifo(fifo, 0o666) == 0)
        let writer = open(fifo, O_RDWR | O_NONBLOCK)  // a writer that never writes
        defer { close(writer) }
        let server = try NinepdProcess(export: root, extraArguments: ["--log-level", "trace"], logDirectory: root)
        defer { _ = server.stop() }
        let log = root.appendingPathComponent("cat.log").path
        let cat = try Spawned(Self.ninep, ["cat", "/fifo", "--server", "127.0.0.1:\(server.port)"], output: log)
        #expect(!cat.wait(timeout: .milliseconds(800)), "cat of an empty FIFO returned")
        let clock = ContinuousClock()
        let sent = clock.now
        kill(cat.pid, SIGINT)
        #expect(cat.wait(timeout: .seconds(2)))
        let latency = clock.now - sent
        #expect(cat.status == 130 && latency < .seconds(1), "status \(String(describing: cat.status)) after \(latency)")
        // The read was flushed (no reply for it), and the fid clunked, before the exit.
        // (read after ninepd has exited and flushed its log, as bytes: the trace holds binary
        // qids, which are not valid UTF-8)
        #expect(server.stop() == 0)
        let trace = String(decoding: (try? Data(contentsOf: server.log)) ?? Data(), as: UTF8.self)
        #expect(trace.contains("clunk(fid: 1)"), "no Tclunk of the FIFO's fid: \(trace.suffix(1000).filter { $0.isASCII })")
        #expect(!trace.contains("read(fid: 1"), "the flushed read was answered: \(trace.suffix(1000).filter { $0.isASCII })")
        print("^C on a blocked ninep cat: exit 130 after \(latency)")
    }

    @Test func progressBarOnlyOnATerminal() throws {
        let root = try Paths.temporaryDirectory("ninep-cli-tty")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }
        let local = root.appendingPathComponent("four.bin")
        try Data(count: 4 << 20).write(to: local)
        // script(1) gives the command a pseudo-terminal as standard error.
        let command = "\(Self.ninep) put \(local.path) /four.bin --server 127.0.0.1:\(server.port)"
        let onTerminal = try run("/usr/bin/script", ["-qec", command, "/dev/null"])
        #expect(onTerminal.status == 0 && onTerminal.output.contains("100%") && onTerminal.output.contains("four.bin ["), "no progress bar on a terminal: \(onTerminal.output)")
        let piped = try ninep(["put", local.path, "/four.bin", "--server", "127.0.0.1:\(server.port)"])
        #expect(piped.status == 0 && piped.output.isEmpty, "output when piped: \(piped.output)")
    }

    /// `ninep put` then `ninep get` of a 1 GiB file gives identical bytes. The file is sparse
    /// with 64 random 1 MiB blocks spread over it (and its last byte set), so that every region
    /// is checked but the test creates it quickly.
    @Test func putThenGetOfOneGibibyteGivesIdenticalBytes() throws {
        let root = try Paths.temporaryDirectory("ninep-cli-1g")
        defer { try? FileManager.default.removeItem(at: root) }
        let export = root.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        let server = try NinepdProcess(export: export, logDirectory: root)
        defer { _ = server.stop() }
        let source = root.appendingPathComponent("source.bin").path
        let copy = root.appendingPathComponent("copy.bin").path
        let make = """
            set -e; truncate -s 1G \(source)
            for i in $(seq 0 63); do dd if=/dev/urandom of=\(source) bs=1M count=1 seek=$((i * 16 + i % 16)) conv=notrunc status=none; done
            printf 'Z' | dd of=\(source) bs=1 seek=1073741823 conv=notrunc status=none
            """
        #expect(try run("/bin/sh", ["-c", make]).status == 0)
        let clock = ContinuousClock()
        var started = clock.now
        let put = try ninep(["put", source, "/big.bin", "--server", "127.0.0.1:\(server.port)"], timeout: .seconds(300))
        let putTime = clock.now - started
        #expect(put.status == 0, "put: \(put.output)")
        started = clock.now
        let get = try ninep(["get", "/big.bin", copy, "--server", "127.0.0.1:\(server.port)"], timeout: .seconds(300))
        let getTime = clock.now - started
        #expect(get.status == 0, "get: \(get.output)")
        let compare = try run("/usr/bin/cmp", [source, copy])
        #expect(compare.status == 0, "the copy differs: \(compare.output)")
        let sums = try run("/bin/sh", ["-c", "md5sum \(source) \(copy) | cut -d' ' -f1"])
        let lines = sums.output.split(separator: "\n")
        #expect(lines.count == 2 && lines[0] == lines[1], "md5: \(sums.output)")
        let size = (try FileManager.default.attributesOfItem(atPath: copy)[.size] as? NSNumber)?.int64Value
        #expect(size == 1 << 30)
        print("1 GiB put in \(putTime), get in \(getTime); md5 \(lines.first ?? "?") both ways")
    }
}
