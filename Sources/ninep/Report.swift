import ArgumentParser
import Glibc
import NinePClient

/// Error messages in the shape shell users know: `ninep: cat: /a/b: No such file or directory`.
enum Report {
    static func failure(_ command: String, _ error: any Error, path: String? = nil) {
        let message: String
        switch error {
        case let error as NinePError:
            let subject = error.path ?? path
            message = subject.map { "\($0): \(error.reason)" } ?? error.reason
        case let error as LocalError:
            message = "\(error.path): \(String(cString: strerror(error.errno)))"
        case is CancellationError:
            message = "interrupted"
        default:
            message = "\(error)"
        }
        printError("ninep: \(command): \(message)")
    }

    static func printError(_ line: String) {
        var text = line
        text.append("\n")
        _ = text.withUTF8 { writeAll(STDERR_FILENO, UnsafeRawBufferPointer($0)) }
    }

    /// Exit status for a failure: 2 when the connection is gone, else 1.
    static func status(_ error: any Error) -> Int32 {
        if let error = error as? NinePError, error.kind == .connectionLost { return 2 }
        return 1
    }
}

/// A failed local system call (for get and put), reported like a remote one.
struct LocalError: Error {
    let path: String
    let errno: Int32
}

/// Runs `body` for each path, reporting each failure and going on; exits 1 if any failed.
func forEachPath(_ command: String, _ paths: [String], _ body: (String) async throws -> Void) async throws {
    var status: Int32 = 0
    for path in paths {
        do {
            try await body(path)
        } catch {
            Report.failure(command, error, path: path)
            status = max(status, Report.status(error))
            if status == 2 { break }
        }
    }
    if status != 0 { throw ExitCode(status) }
}
