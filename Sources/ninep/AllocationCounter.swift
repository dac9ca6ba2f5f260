import Glibc

/// Reads the malloc count of an LD_PRELOAD interposer that exports
/// `uint64_t ninep_alloc_calls(void)` (every malloc, calloc, realloc and aligned allocation
/// of the whole process, all threads). Unavailable when no such interposer is loaded.
enum AllocationCounter {
    typealias Reader = @convention(c) () -> UInt64

    /// The function's address (an integer, so the constant is Sendable).
    static let address: UInt = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "ninep_alloc_calls") else { return 0 }
        return UInt(bitPattern: symbol)
    }()

    static var available: Bool { address != 0 }

    static func read() -> UInt64 {
        guard let pointer = UnsafeRawPointer(bitPattern: address) else { return 0 }
        return unsafeBitCast(pointer, to: Reader.self)()
    }
}
