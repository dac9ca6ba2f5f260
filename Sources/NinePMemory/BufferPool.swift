import Glibc

/// One size class of message buffers: `capacity` buffers of `bufferSize` bytes (a multiple of
/// 4096, each 4096-aligned), carved out of one mapping made at start-up, touched, and locked
/// in RAM when the system allows it. Buffers are handed out and given back; none is ever
/// created or freed afterwards, so the request path never calls malloc for them.
///
/// Not thread-safe on its own: `MemoryArena` guards every pool with its lock.
public final class BufferPool: @unchecked Sendable {
    // @unchecked Sendable: `freeStack`/`freeCount` are only touched with the owning arena's
    // lock held; the mapping and sizes are immutable after init.
    public let name: String
    public let bufferSize: Int
    public let capacity: Int
    /// Whether mlock succeeded for the whole mapping.
    public let locked: Bool
    /// errno of a refused mlock (0 when locked).
    public let lockError: Int32
    private let region: UnsafeMutableRawPointer
    private let freeStack: UnsafeMutablePointer<Int32>
    private(set) var freeCount: Int

    public enum CreationError: Error, CustomStringConvertible {
        case mapFailed(bytes: Int, errno: Int32)
        public var description: String {
            switch self {
            case let .mapFailed(bytes, code):
                "cannot map \(bytes) bytes for buffers: \(String(cString: strerror(code))); lower --memory-budget"
            }
        }
    }

    public init(name: String, bufferSize: Int, capacity: Int) throws(CreationError) {
        precondition(bufferSize > 0 && bufferSize % 4096 == 0 && capacity > 0)
        self.name = name
        self.bufferSize = bufferSize
        self.capacity = capacity
        let bytes = bufferSize * capacity
        guard let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else {
            throw .mapFailed(bytes: bytes, errno: errno)
        }
        region = mapped
        // Touch every page now, so the memory is really ours before the first request.
        memset(mapped, 0, bytes)
        if mlock(mapped, bytes) == 0 {
            locked = true
            lockError = 0
        } else {
            locked = false
            lockError = errno
        }
        freeStack = .allocate(capacity: capacity)
        for index in 0..<capacity { freeStack[index] = Int32(capacity - 1 - index) }
        freeCount = capacity
    }

    deinit {
        munlock(region, bufferSize * capacity)
        munmap(region, bufferSize * capacity)
        freeStack.deallocate()
    }

    public var totalBytes: Int { bufferSize * capacity }

    /// A free buffer, or nil when all are in use. Not thread-safe: the caller serialises
    /// (`MemoryArena` calls it with its lock held). Public so that Benchmarks/ can measure
    /// the pool alone; servers go through `MemoryArena`.
    public func take() -> UnsafeMutableRawBufferPointer? {
        guard freeCount > 0 else { return nil }
        freeCount -= 1
        let index = Int(freeStack[freeCount])
        return UnsafeMutableRawBufferPointer(start: region + index * bufferSize, count: bufferSize)
    }

    /// Gives back a buffer `take()` returned. Not thread-safe, as `take()`.
    public func put(_ buffer: UnsafeMutableRawBufferPointer) {
        let index = (buffer.baseAddress! - region) / bufferSize
        precondition(index >= 0 && index < capacity && buffer.count == bufferSize, "buffer returned to the wrong pool")
        freeStack[freeCount] = Int32(index)
        freeCount += 1
    }

    /// True if `buffer` was carved from this pool.
    public func owns(_ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let base = buffer.baseAddress else { return false }
        return base >= region && base < region + bufferSize * capacity
    }
}
