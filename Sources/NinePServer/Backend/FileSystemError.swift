import Glibc

/// A failed file-system operation: the Linux errno it ended with, read right after the call
/// (before any other call can change it). It is also what a request's Rlerror carries, so the
/// server throws the same type for its own refusals (`ServerErrno`): a backend's error reaches
/// the client unchanged, with no conversion table to keep in step.
public struct FileSystemError: Error, Equatable, Sendable {
    /// The errno, as the wire carries it.
    public var code: UInt32

    public init(_ code: UInt32) { self.code = code }
    public init(errno: Int32) { self.code = UInt32(bitPattern: errno) }

    public var errno: Int32 { Int32(bitPattern: code) }

    /// The calling thread's errno right after a failed system call.
    public static var current: FileSystemError { FileSystemError(errno: Glibc.errno) }

    /// The process or the system is out of descriptors (the server may relieve the pressure).
    var isDescriptorShortage: Bool { errno == EMFILE || errno == ENFILE }
}
