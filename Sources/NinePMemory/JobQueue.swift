/// A first-in first-out queue of a fixed ring, reserved at start, and past it an array (which
/// allocates: only under overload). The executors and IO threads of the daemons queue their
/// jobs here (`ClientExecutor`, `FuseWorker`, `LocalIOThreads`), so the steady state allocates
/// nothing and order is kept even when the ring overflows: while the array holds anything the
/// ring is full, and each pop moves the array's oldest into the ring.
///
/// Not thread-safe: its owner guards it with its own lock. Inlinable, so each user gets a
/// version specialized for its element (no generic dispatch on the request path).
public struct JobQueue<Element>: ~Copyable {
    @usableFromInline let ring: UnsafeMutablePointer<Element?>
    public let capacity: Int
    @usableFromInline var head = 0
    @usableFromInline var countInRing = 0
    @usableFromInline var overflow: [Element] = []

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        ring = .allocate(capacity: capacity)
        ring.initialize(repeating: nil, count: capacity)
    }

    deinit {
        ring.deinitialize(count: capacity)
        ring.deallocate()
    }

    @inlinable public var isEmpty: Bool { countInRing == 0 }

    @inlinable public mutating func push(_ element: Element) {
        if countInRing < capacity {
            ring[(head + countInRing) % capacity] = element
            countInRing += 1
        } else {
            overflow.append(element)
        }
    }

    @inlinable public mutating func pop() -> Element? {
        guard countInRing > 0 else { return nil }
        let element = ring[head].take()
        head = (head + 1) % capacity
        countInRing -= 1
        if !overflow.isEmpty {
            // Concrete `remove(at:)`: the generic `removeFirst` allocates in a debug build.
            ring[(head + countInRing) % capacity] = overflow.remove(at: 0)
            countInRing += 1
        }
        return element
    }
}
