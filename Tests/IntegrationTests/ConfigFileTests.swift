import Foundation
import NinePTestSupport
import NinePWire
import Testing

/// `ninepd --config FILE`: exports by aname from a YAML file, SIGHUP reloads that apply a good
/// file to new attaches only and ignore a bad one whole, and start-up errors that name the
/// problem.
@Suite(.serialized)
struct ConfigFileTests {
    /// A temporary directory with export directories a, b and c (each holding `in-NAME`).
    struct Fixture {
        let root: URL
        var config: URL { root.appendingPathComponent("ninepd.yaml") }
        func path(_ name: String) -> String { root.appendingPathComponent(name).path }

        init(_ prefix: String) throws {
            root = try Paths.temporaryDirectory(prefix)
            for name in ["a", "b", "c"] {
                try FileManager.default.createDirectory(atPath: path(name), withIntermediateDirectories: true)
                try Data("file of \(name)".utf8).write(to: URL(fileURLWithPath: path("\(name)/in-\(name)")))
            }
        }

        func write(_ text: String) throws {
            try Data(text.utf8).write(to: config)
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    /// True once `text` appears in the server's log `count` times (within `timeout`).
    func waitForLog(_ server: NinepdProcess, containing text: String, count: Int = 1, timeout: Duration = .seconds(10)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if server.logText.components(separatedBy: text).count - 1 >= count { return true }
            usleep(20_000)
        }
        return false
    }

    /// A new connection's attach of `aname`: nil when attached, else the errno.
    func attachErrno(_ server: NinepdProcess, _ aname: String) throws -> UInt32? {
        let c = try WireClient(port: server.port)
        defer { c.close() }
        try c.version()
        return errnoOf { try c.attach(fid: 0, aname: aname) }
    }

    /// A new connection's read of `name` in export `aname`.
    func readFile(_ server: NinepdProcess, _ aname: String, _ name: String) throws -> String {
        let c = try WireClient(port: server.port)
        defer { c.close() }
        try c.version()
        try c.attach(fid: 0, aname: aname)
        try c.walk(0, 1, [name])
        try c.lopen(1, OpenFlags.readOnly)
        return String(decoding: try c.read(1, offset: 0, count: 4096), as: UTF8.self)
    }

    @Test func startUpListsEveryExportAndEachAnameServesItsOwn() throws {
        let f = try Fixture("ninep-config-start")
        defer { f.remove() }
        try f.write("""
            workers: 2
            exports:
              - name: a
                path: \(f.path("a"))
              - name: b
                path: \(f.path("b"))
                read-only: true
            """)
        let server = try NinepdProcess(arguments: ["--config", f.config.path], logDirectory: f.root)
        defer { _ = server.stop() }
        // The listener is bound before the start-up line is written.
        #expect(waitForLog(server, containing: "configuration from \(f.config.path)"), "no start-up lines: \(server.logText)")
        let log = server.logText
        #expect(log.contains("a -> \(f.path("a")) (read-write"), "start-up line: \(log)")
        #expect(log.contains("b -> \(f.path("b")) (read-only"), "start-up line: \(log)")
        #expect(log.contains("2 workers"), "workers: 2 from the file: \(log)")

        #expect(try readFile(server, "a", "in-a") == "file of a")
        #expect(try readFile(server, "b", "in-b") == "file of b")
        #expect(try readFile(server, "", "in-a") == "file of a")
        #expect(try attachErrno(server, "nothing-here") == LinuxErrno.ENOENT)
        #expect(waitForLog(server, containing: "refused attach to unknown export \"nothing-here\""), "no notice for the unknown aname: \(server.logText)")

        kill(server.child.pid, SIGUSR1)
        #expect(waitForLog(server, containing: "status: export b -> \(f.path("b")) (read-only"), "SIGUSR1 lists the exports: \(server.logText)")
        #expect(server.stop() == 0)
    }

    /// docs/ninepd.yaml.example, its /srv directories made under the fixture, starts; flags
    /// given on the command line (--listen, --workers) override the file's keys.
    @Test func theExampleFileWorksAndFlagsOverrideIt() throws {
        let f = try Fixture("ninep-config-example")
        defer { f.remove() }
        let example = try String(contentsOf: Paths.packageRoot.appendingPathComponent("docs/ninepd.yaml.example"), encoding: .utf8)
        for name in ["share", "archive", "guests", "team"] {
            try FileManager.default.createDirectory(atPath: f.path("srv/\(name)"), withIntermediateDirectories: true)
        }
        try Data("in the archive".utf8).write(to: URL(fileURLWithPath: f.path("srv/archive/note")))
        try f.write(example.replacingOccurrences(of: "/srv/", with: f.path("srv") + "/"))
        let server = try NinepdProcess(arguments: ["--config", f.config.path, "--workers", "3"], logDirectory: f.root)
        defer { _ = server.stop() }
        #expect(waitForLog(server, containing: "configuration from \(f.config.path)"), "no start-up lines: \(server.logText)")
        let log = server.logText
        #expect(log.contains("3 workers"), "--workers 3 overrides the file's 16: \(log)")
        #expect(log.contains("on tcp:127.0.0.1:\(server.port):"), "--listen overrides the file's addresses: \(log)")
        #expect(log.contains("archive -> \(f.path("srv/archive")) (read-only"), "\(log)")
        #expect(log.contains("team -> \(f.path("srv/team")) (read-write, only uids 1000,1001"), "\(log)")
        #expect(try readFile(server, "archive", "note") == "in the archive")
        #expect(server.stop() == 0)
    }

    /// metrics-listen in the file starts the metrics endpoint; --metrics-listen overrides it.
    @Test func metricsListenFromTheFileAndTheFlagFirst() throws {
        let f = try Fixture("ninep-config-metrics")
        defer { f.remove() }
        let fromFile = try freeLoopbackPort()
        try f.write("""
            metrics-listen: tcp:127.0.0.1:\(fromFile)
            exports:
              - name: a
                path: \(f.path("a"))
            """)
        let server = try NinepdProcess(arguments: ["--config", f.config.path], logDirectory: f.root)
        #expect(waitForLog(server, containing: "metrics at http://127.0.0.1:\(fromFile)/metrics"), "the file's metrics-listen: \(server.logText)")
        #expect(server.stop() == 0)

        let fromFlag = try freeLoopbackPort()
        let logs = f.root.appendingPathComponent("second")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let second = try NinepdProcess(arguments: ["--config", f.config.path, "--metrics-listen", "tcp:127.0.0.1:\(fromFlag)"], logDirectory: logs)
        defer { _ = second.stop() }
        #expect(waitForLog(second, containing: "metrics at http://127.0.0.1:\(fromFlag)/metrics"), "--metrics-listen over the file: \(second.logText)")
        #expect(!second.logText.contains(":\(fromFile)/metrics"))
        #expect(second.stop() == 0)
    }

    @Test func sighupAppliesAGoodFileToNewAttachesOnly() throws {
        let f = try Fixture("ninep-config-reload")
        defer { f.remove() }
        try f.write("""
            exports:
              - name: a
                path: \(f.path("a"))
              - name: b
                path: \(f.path("b"))
            """)
        let server = try NinepdProcess(arguments: ["--config", f.config.path], logDirectory: f.root)
        defer { _ = server.stop() }
        // A session attached to a (read-write) before the reload.
        let before = try WireClient(port: server.port)
        defer { before.close() }
        try before.version()
        try before.attach(fid: 0, aname: "a")

        // a becomes read-only, b goes, c comes; msize changes too (needs a restart).
        try f.write("""
            msize: 64K
            exports:
              - name: a
                path: \(f.path("a"))
                read-only: true
              - name: c
                path: \(f.path("c"))
            """)
        #expect(kill(server.child.pid, SIGHUP) == 0)
        #expect(waitForLog(server, containing: "reloaded \(f.config.path): exports added c; removed b; changed a"), "no reload line: \(server.logText)")
        #expect(server.logText.contains("msize changed in the file; a running ninepd cannot change it: restart ninepd to apply"), "no restart warning: \(server.logText)")

        #expect(try attachErrno(server, "b") == LinuxErrno.ENOENT)
        #expect(try readFile(server, "c", "in-c") == "file of c")
        let after = try WireClient(port: server.port)
        defer { after.close() }
        try after.version()
        try after.attach(fid: 0, aname: "a")
        try after.walk(0, 1, [])
        #expect(errnoOf { try after.lcreate(1, "refused") } == LinuxErrno.EROFS)

        // The session from before still writes: its export is the one it attached to.
        try before.walk(0, 1, [])
        _ = try before.lcreate(1, "written-after-reload")
        #expect(try before.write(1, offset: 0, Array("kept".utf8)) == 4)
        try before.clunk(1)
        try before.walk(0, 2, ["written-after-reload"])
        try before.lopen(2, OpenFlags.readOnly)
        #expect(try before.read(2, offset: 0, count: 100) == Array("kept".utf8))
        #expect(FileManager.default.contents(atPath: f.path("a/written-after-reload")) == Data("kept".utf8))
        #expect(server.child.isRunning)
        #expect(server.stop() == 0)
    }

    @Test func sighupWithABadFileChangesNothing() throws {
        let f = try Fixture("ninep-config-bad-reload")
        defer { f.remove() }
        try f.write("""
            exports:
              - name: a
                path: \(f.path("a"))
            """)
        let server = try NinepdProcess(arguments: ["--config", f.config.path], logDirectory: f.root)
        defer { _ = server.stop() }

        // A YAML syntax error, with a new export c in it.
        try f.write("""
            exports:
              - name: c
                path: \(f.path("c"))
              - name: [a
            """)
        kill(server.child.pid, SIGHUP)
        #expect(waitForLog(server, containing: "received SIGHUP: not reloading \(f.config.path), nothing changed: \(f.config.path):"), "no refusal: \(server.logText)")
        #expect(server.logText.contains("fix the YAML syntax"), "the reason: \(server.logText)")
        #expect(try attachErrno(server, "a") == nil)
        #expect(try attachErrno(server, "c") == LinuxErrno.ENOENT)

        // A directory that does not exist, beside a good new export.
        try f.write("""
            exports:
              - name: a
                path: \(f.path("a"))
              - name: c
                path: \(f.path("c"))
              - name: gone
                path: \(f.path("no-such-directory"))
            """)
        kill(server.child.pid, SIGHUP)
        #expect(waitForLog(server, containing: "received SIGHUP: not reloading", count: 2), "no second refusal: \(server.logText)")
        #expect(server.logText.contains("exports[2].path '\(f.path("no-such-directory"))' is not a directory that can be opened"), "the reason: \(server.logText)")
        #expect(try attachErrno(server, "a") == nil)
        #expect(try attachErrno(server, "c") == LinuxErrno.ENOENT)
        #expect(try attachErrno(server, "gone") == LinuxErrno.ENOENT)
        #expect(!server.logText.contains("reloaded "), "a bad file was applied: \(server.logText)")
        #expect(server.child.isRunning)
        #expect(server.stop() == 0)
    }

    @Test func sighupWithoutAConfigFileSaysSo() throws {
        let f = try Fixture("ninep-config-none")
        defer { f.remove() }
        let server = try NinepdProcess(export: URL(fileURLWithPath: f.path("a")), logDirectory: f.root)
        defer { _ = server.stop() }
        kill(server.child.pid, SIGHUP)
        #expect(waitForLog(server, containing: "received SIGHUP: no config file to reload"), "\(server.logText)")
        #expect(try readFile(server, "", "in-a") == "file of a")
        #expect(server.stop() == 0)
    }

    /// Files ninepd must refuse to start with, and what its message must say.
    @Test func badFilesStopNinepdWithAMessageNamingTheProblem() throws {
        let f = try Fixture("ninep-config-errors")
        defer { f.remove() }
        let a = f.path("a"), b = f.path("b")
        let cases: [(file: String, says: [String])] = [
            ("exports:\n  - name: a\n    path: \(a)\n    read_only: true\n",
             [":4: unknown key 'read_only' in exports[0]", "read-only"]),
            ("exports:\n  - name: a\n    path: \(a)\n    read-only: maybe\n",
             [":4: exports[0].read-only must be true or false"]),
            ("msize: lots\nexports:\n  - name: a\n    path: \(a)\n",
             [":1: msize 'lots' is not a size"]),
            ("workers: many\nexports:\n  - name: a\n    path: \(a)\n",
             [":1: workers must be a whole number"]),
            ("exports:\n  - name: a\n", ["exports[0] has no 'path'"]),
            ("exports:\n  - name: a\n    path: \(f.path("missing"))\n",
             [":3: exports[0].path '\(f.path("missing"))' is not a directory that can be opened"]),
            ("exports:\n  - name: a\n    path: \(a)\n  - name: a\n    path: \(b)\n",
             [":4: exports[1].name 'a' is already the name of exports[0] (line 2)"]),
            ("exports:\n  - name: ../a\n    path: \(a)\n",
             [":2: exports[0].name '../a' is not a clean name"]),
            ("exports:\n  - name: a\n    path: relative/dir\n",
             ["exports[0].path 'relative/dir' is not an absolute path"]),
            ("exports: [\n", ["fix the YAML syntax"]),
            ("listen: tcp:127.0.0.1:5640\n", ["no 'exports' key"]),
            ("msize: 1M\nmsize: 2M\nexports:\n  - name: a\n    path: \(a)\n",
             [":2: key 'msize' is given twice in the top level (first on line 1)"]),
        ]
        for (index, bad) in cases.enumerated() {
            let file = f.root.appendingPathComponent("bad-\(index).yaml")
            try Data(bad.file.utf8).write(to: file)
            let outcome = try run(Paths.ninepd.path, ["--config", file.path, "--listen", "tcp:127.0.0.1:0"], timeout: .seconds(30))
            #expect(outcome.status == 64, "case \(index) exited \(outcome.status): \(outcome.output)")
            #expect(outcome.output.contains(file.path), "case \(index) does not name the file: \(outcome.output)")
            for text in bad.says {
                #expect(outcome.output.contains(text), "case \(index) should say \"\(text)\": \(outcome.output)")
            }
        }

        // The one-export flags with --config.
        let good = f.root.appendingPathComponent("good.yaml")
        try Data("exports:\n  - name: a\n    path: \(a)\n".utf8).write(to: good)
        let both = try run(Paths.ninepd.path, ["--config", good.path, "--export", b], timeout: .seconds(30))
        #expect(both.status == 64, "--export with --config exited \(both.status): \(both.output)")
        #expect(both.output.contains("--export describes the one export of a command line and cannot be combined with --config"), "\(both.output)")
    }
}
