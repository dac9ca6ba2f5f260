import Glibc
import NinePClient

/// The small-file cycle of the smallfile workload, on one path per task: Tlcreate, one Twrite of
/// 4 KiB, Tclunk, stat by path (Twalk + Tgetattr + Tclunk), Tunlinkat.
struct SmallFile {
    static let size = 4096

    let client: NinePClient
    let path: String
    /// `size` bytes owned by the task that runs the cycle.
    let data: UnsafeRawBufferPointer

    func cycle() async throws {
        let file = try await client.create(path, permissions: 0o644, .write, options: .exclusive)
        let written: Int
        do {
            written = try await file.write(data, at: 0)
        } catch {
            await file.close()
            throw error
        }
        await file.close()
        let attributes = try await client.stat(path)
        guard written == SmallFile.size && attributes.size == UInt64(SmallFile.size) else {
            throw BenchError("\(path): wrote \(written) bytes, size \(attributes.size) after close (expected \(SmallFile.size))")
        }
        try await client.remove(path)
    }
}

/// A benchmark's own failure (a short read, a wrong size), reported as its message.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
