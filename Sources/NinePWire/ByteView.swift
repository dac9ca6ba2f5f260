/// A borrowed view of bytes inside a message buffer: strings and read/write payloads are
/// decoded as views so that no byte is copied. A view is valid only while the buffer it
/// points into is held; copy it (`makeString()`, `Array(view)`) to keep it longer.
@frozen
public struct ByteView: RandomAccessCollection, Equatable, Hashable, CustomStringConvertible {
    public let base: UnsafeRawBufferPointer

    @inlinable
    public init(_ base: UnsafeRawBufferPointer) { self.base = base }

    /// A view of a string literal (static storage, valid forever).
    @inlinable
    public init(static literal: StaticString) {
        self.base = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
    }

    @inlinable public static var empty: ByteView { ByteView(UnsafeRawBufferPointer(start: nil, count: 0)) }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { base.count }
    @inlinable public subscript(position: Int) -> UInt8 { base[position] }

    /// Decodes the bytes as UTF-8 (invalid sequences are repaired). Allocates: for logs and tests.
    public func makeString() -> String { String(decoding: base, as: UTF8.self) }

    public var description: String { makeString() }

    /// True when the bytes equal `literal` (no allocation).
    @inlinable
    public func equals(_ literal: StaticString) -> Bool {
        guard literal.utf8CodeUnitCount == base.count else { return false }
        if base.count == 0 { return true }
        let other = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        return memoryEquals(base, other)
    }

    @inlinable
    public func contains(byte: UInt8) -> Bool { base.contains(byte) }

    @inlinable
    public static func == (lhs: ByteView, rhs: ByteView) -> Bool {
        lhs.base.count == rhs.base.count && (lhs.base.count == 0 || memoryEquals(lhs.base, rhs.base))
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(bytes: base) }
}

@inlinable
func memoryEquals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    while i < a.count {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}
