import Glibc
import NinePTransport
import Synchronization

/// An atomic flag shared with a thread that may outlive the waiter.
public final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    public init() {}
    public func set() { value.store(true, ordering: .releasing) }
    public var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Runs `body` on a thread of its own after `delay` (a fake server answering late).
public func runAfter(_ delay: Duration, _ body: @escaping @Sendable () -> Void) {
    let (seconds, attoseconds) = delay.components
    let micros = UInt32(seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
    DaemonThread.start(name: "test-after") {
        usleep(micros)
        body()
    }
}

/// Polls `condition` (every millisecond unless told otherwise) for at most `limit`; true as
/// soon as it holds.
public func waitUntil(within limit: Duration, pollingEvery interval: Duration = .milliseconds(1), _ condition: () -> Bool) -> Bool {
    let clock = ContinuousClock()
    let start = clock.now
    let (seconds, attoseconds) = interval.components
    let micros = UInt32(clamping: max(1, seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
    while clock.now - start < limit {
        if condition() { return true }
        usleep(micros)
    }
    return condition()
}

// MARK: - Thread capabilities

// A thread's own capability sets, for tests of a server whose worker threads lack one: a
// server started on such a thread starts its threads from it, and they inherit the sets.
// glibc exports capget/capset but no header declares them to Swift: looked up by name.

private typealias CapabilityCall = @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32

/// Removes `capability` (CAP_* number) from the calling thread's effective and permitted
/// sets, for the rest of the thread's life. False if the kernel refused.
func dropThreadCapability(_ capability: Int) -> Bool {
    guard let get = dlsym(nil, "capget"), let set = dlsym(nil, "capset") else { return false }
    let capget = unsafeBitCast(get, to: CapabilityCall.self)
    let capset = unsafeBitCast(set, to: CapabilityCall.self)
    // struct __user_cap_header_struct { u32 version (_LINUX_CAPABILITY_VERSION_3); int pid (0: this thread) }
    var header: [UInt32] = [0x2008_0522, 0]
    // Two struct __user_cap_data_struct { u32 effective, permitted, inheritable }: bits 0-31, 32-63.
    var data = [UInt32](repeating: 0, count: 6)
    func call(_ function: CapabilityCall) -> Bool {
        header.withUnsafeMutableBytes { h in data.withUnsafeMutableBytes { d in function(h.baseAddress!, d.baseAddress!) == 0 } }
    }
    guard call(capget) else { return false }
    let bit = UInt32(1) << UInt32(capability % 32)
    data[capability / 32 * 3] &= ~bit
    data[capability / 32 * 3 + 1] &= ~bit
    return call(capset)
}

/// Runs `body` on a new thread without `capability` and waits for it; its result or error
/// comes back to the caller.
public func onThreadWithout<T>(capability: Int, _ body: @escaping () throws -> T) throws -> T {
    let job = CapabilityJob<T> {
        guard dropThreadCapability(capability) else { throw WireClientError.unexpected("cannot drop capability \(capability)") }
        return try body()
    }
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        Unmanaged<ThreadJob>.fromOpaque(raw!).takeUnretainedValue().run()
        return nil
    }, Unmanaged.passUnretained(job as ThreadJob).toOpaque())
    guard rc == 0 else { throw WireClientError.unexpected("pthread_create: \(rc)") }
    pthread_join(thread, nil)
    return try job.result!.get()
}

/// What the C thread entry calls: one method, no generic parameter.
private class ThreadJob {
    func run() {}
}

private final class CapabilityJob<T>: ThreadJob {
    let body: () throws -> T
    var result: Result<T, any Error>?
    init(_ body: @escaping () throws -> T) { self.body = body }
    override func run() { result = Result { try body() } }
}
