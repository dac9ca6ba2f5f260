import Glibc

/// What memory-pressure's streams write and expect back: for slot s at generation g, the head
/// "cIIII sSSSS gGGGGGGGGGG " over one of three random blocks (chosen by s + g), so that every
/// write differs from the slot's previous one and a stale or misplaced read is seen.
struct PressurePattern: Sendable {
    let connection: Int
    let io: Int
    let bases: [[UInt8]]

    init(connection: Int, io: Int) {
        self.connection = connection
        self.io = io
        bases = (0..<3).map { _ in randomBytes(io) }
    }

    func head(slot: Int, generation: Int) -> [UInt8] {
        Array("c\(padded(connection, 4)) s\(padded(slot, 4)) g\(padded(generation, 10)) ".utf8)
    }

    /// Writes the expected bytes of (slot, generation) into `buffer` (io bytes).
    func fill(_ buffer: UnsafeMutableRawBufferPointer, slot: Int, generation: Int) {
        let head = head(slot: slot, generation: generation)
        bases[(slot + generation) % 3].withUnsafeBytes { buffer.copyMemory(from: $0) }
        head.prefix(io).withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// Bytes of `data` that differ from (slot, generation)'s, plus the length difference.
    func differences(_ data: UnsafeRawBufferPointer, slot: Int, generation: Int) -> Int {
        let head = head(slot: slot, generation: generation)
        let base = bases[(slot + generation) % 3]
        var bad = abs(data.count - io)
        let common = min(data.count, io)
        if common == io, head.count <= io,
           memcmp(data.baseAddress!, head, head.count) == 0,
           base.withUnsafeBytes({ memcmp(data.baseAddress! + head.count, $0.baseAddress! + head.count, io - head.count) }) == 0 {
            return bad
        }
        for i in 0..<common where data[i] != (i < head.count ? head[i] : base[i]) { bad += 1 }
        return bad
    }

    private func padded(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
