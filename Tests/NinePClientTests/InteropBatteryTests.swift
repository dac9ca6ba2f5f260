import Glibc
import NinePClient
import NinePTestSupport
import NinePWire
import Testing

/// The same battery of operations against ninepd and against diod: every operation of the
/// client's API, checked both through the client and on the exported directory itself.
@Suite(.serialized)
struct InteropBatteryTests {
    @Test func batteryAgainstNinepd() async throws {
        let peer = try InProcessNinepd()
        defer { peer.stop() }
        try await runBattery(peer)
    }

    @Test func unixSocketAndPipelinedStatsAgainstNinepd() async throws {
        let peer = try InProcessNinepd()
        defer { peer.stop() }
        makeFile("\(peer.exportPath)/file", pseudoRandomBytes(5000, seed: 3))
        let client = try await NinePClient.connect(to: "unix:\(peer.unixSocket)", uname: "root")
        defer { client.close() }
        let file = try await client.open("/file")
        #expect(try await file.read(at: 0, count: 10_000) == pseudoRandomBytes(5000, seed: 3))
        // 200 getattrs from 20 tasks at once on one fid, over the unix socket.
        let sizes = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for _ in 0..<20 { group.addTask { var last: UInt64 = 0; for _ in 0..<10 { last = try await file.stat().size }; return last } }
            return try await group.reduce(into: [UInt64]()) { $0.append($1) }
        }
        #expect(sizes == Array(repeating: 5000, count: 20))
        await file.close()
        #expect(client.tagsInUse == 0)
    }

    @Test func batteryAgainstDiod() async throws {
        let peer = try DiodPeer()
        defer { peer.stop() }
        try await runBattery(peer)
    }
}

func runBattery(_ peer: some TestPeer) async throws {
    let client = try await peer.connect(msize: 64 * 1024)
    defer { client.close() }
    let export = peer.exportPath
    let tag = "[\(peer.name)]"

    // mkdir, nested, and what it looks like on disk.
    try await client.mkdir("/dir", permissions: 0o750)
    try await client.mkdir("/dir/sub")
    var st = stat()
    #expect(lstat("\(export)/dir/sub", &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR, "\(tag) mkdir")
    #expect(lstat("\(export)/dir", &st) == 0 && st.st_mode & 0o777 == 0o750, "\(tag) mkdir permissions")

    // create, write across many messages, read back in odd-sized pieces.
    let payload = pseudoRandomBytes(300_000 + 17, seed: 7)
    let file = try await client.create("/dir/data.bin", permissions: 0o640)
    try await file.write(contentsOf: payload, at: 0)
    try await file.fsync()
    await file.close()
    #expect(fileBytes("\(export)/dir/data.bin") == payload, "\(tag) written bytes differ on disk")
    let reader = try await client.open("/dir/data.bin")
    #expect(try await reader.read(at: 0, count: payload.count + 100) == payload, "\(tag) read back")
    #expect(try await reader.read(at: 12345, count: 999) == Array(payload[12345..<(12345 + 999)]), "\(tag) read at offset")
    #expect(try await reader.read(at: UInt64(payload.count), count: 10) == [], "\(tag) read at end")
    await reader.close()

    // stat
    let attributes = try await client.stat("/dir/data.bin")
    #expect(attributes.size == UInt64(payload.count) && attributes.isRegularFile && attributes.permissions == 0o640, "\(tag) stat \(attributes)")
    #expect(try await client.stat("/dir").isDirectory, "\(tag) stat dir")

    // setattr: truncate, chmod, mtime
    try await client.setAttributes("/dir/data.bin", AttributeChanges(mode: 0o600, size: 1000, modificationTime: .set(Timestamp(seconds: 1_000_000_000))))
    #expect(lstat("\(export)/dir/data.bin", &st) == 0 && st.st_size == 1000 && st.st_mode & 0o777 == 0o600 && st.st_mtim.tv_sec == 1_000_000_000, "\(tag) setattr")

    // readdir of a directory with many entries (several Treaddir batches with a small msize).
    for index in 0..<300 { makeFile("\(export)/dir/sub/entry-with-a-longish-name-\(index)", []) }
    var names = Set<String>()
    for try await entry in client.readdir("/dir/sub") { names.insert(entry.name) }
    #expect(names == Set((0..<300).map { "entry-with-a-longish-name-\($0)" }), "\(tag) readdir saw \(names.count) names")

    // rename, symlink, readlink, link
    try await client.rename("/dir/data.bin", to: "/dir/sub/moved.bin")
    #expect(fileBytes("\(export)/dir/sub/moved.bin")?.count == 1000 && access("\(export)/dir/data.bin", F_OK) != 0, "\(tag) rename")
    try await client.symlink("../elsewhere/target", at: "/dir/link")
    #expect(try await client.readlink("/dir/link") == "../elsewhere/target", "\(tag) readlink")
    #expect(try await client.stat("/dir/link").isSymlink, "\(tag) symlink type")
    try await client.link("/dir/sub/moved.bin", at: "/dir/hard")
    #expect(try await client.stat("/dir/hard").linkCount == 2, "\(tag) link count")

    // xattrs
    try await client.setXattr("/dir/hard", name: "user.colour", value: Array("blue".utf8))
    #expect(try await client.xattr("/dir/hard", name: "user.colour") == Array("blue".utf8), "\(tag) xattr value")
    #expect(try await client.xattrNames("/dir/hard").contains("user.colour"), "\(tag) xattr list")

    // statfs, locks
    let fs = try await client.statfs("/")
    #expect(fs.blockSize > 0 && fs.blocks > 0, "\(tag) statfs \(fs)")
    let locked = try await client.open("/dir/hard", .readWrite)
    #expect(try await locked.lock(.write), "\(tag) lock")
    #expect(try await locked.lock(.unlock), "\(tag) unlock")
    await locked.close()

    // errors carry errno, operation and path
    do {
        _ = try await client.stat("/dir/missing/file")
        Issue.record("\(tag) stat of a missing path succeeded")
    } catch let error as NinePError {
        #expect(error.errno == ENOENT && error.operation == .walk && error.path == "/dir/missing/file", "\(tag) \(error)")
    }
    do {
        try await client.mkdir("/dir")
        Issue.record("\(tag) mkdir of an existing directory succeeded")
    } catch let error as NinePError {
        #expect(error.errno == EEXIST && error.operation == .mkdir, "\(tag) \(error)")
    }

    // deep paths: more than 16 names in one walk
    var deep = ""
    for level in 0..<20 {
        deep += "/d\(level)"
        try await client.mkdir(deep)
    }
    let deepFile = try await client.create(deep + "/leaf")
    try await deepFile.write(contentsOf: Array("deep".utf8), at: 0)
    await deepFile.close()
    #expect(try await client.stat(deep + "/leaf").size == 4, "\(tag) walk of 21 names")

    // pipelining: 64 reads in flight from many tasks, answered in any order
    let shared = try await client.open("/dir/sub/moved.bin")
    let expected = Array(payload[0..<1000])
    try await withThrowingTaskGroup(of: Bool.self) { group in
        for index in 0..<64 {
            group.addTask {
                let offset = (index * 37) % 900
                return try await shared.read(at: UInt64(offset), count: 100) == Array(expected[offset..<(offset + 100)])
            }
        }
        var good = 0
        for try await ok in group where ok { good += 1 }
        #expect(good == 64, "\(tag) concurrent reads")
    }
    await shared.close()

    // remove: file, symlink, empty directory, non-empty directory refused
    try await client.remove("/dir/hard")
    try await client.remove("/dir/link")
    #expect(access("\(export)/dir/hard", F_OK) != 0, "\(tag) remove file")
    do {
        try await client.remove("/dir/sub", directory: true)
        Issue.record("\(tag) removing a non-empty directory succeeded")
    } catch let error as NinePError {
        #expect(error.errno == ENOTEMPTY || error.errno == EEXIST, "\(tag) \(error)")
    }
    try await client.mkdir("/empty")
    try await client.remove("/empty", directory: true)
    #expect(access("\(export)/empty", F_OK) != 0, "\(tag) remove directory")
    #expect(client.tagsInUse == 0, "\(tag) tags left in use: \(client.tagsInUse)")
}
