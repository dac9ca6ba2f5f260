import Glibc

/// Whole-buffer copies and comparisons through memcpy/memcmp: the scripts' tests run this tool
/// as a debug build, where a byte-at-a-time loop (or Array's generic == and init) over 64 KiB
/// costs milliseconds and slowed the malloc-failure loop twentyfold.
enum Bytes {
    static func copy(_ raw: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: raw.count) { buffer, count in
            if let source = raw.baseAddress, raw.count > 0 { memcpy(buffer.baseAddress!, source, raw.count) }
            count = raw.count
        }
    }

    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
    }

    /// Bytes at the same index that differ, plus the difference in length (the Python
    /// scripts' count of corrupted bytes).
    static func differing(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var bad = abs(a.count - b.count)
        for i in 0..<min(a.count, b.count) where a[i] != b[i] { bad += 1 }
        return bad
    }

    /// `size` bytes of the little-endian `word` repeated, filled by doubling memcpy.
    static func repeated(_ word: UInt32, count size: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            var filled = min(4, size)
            _ = withUnsafeBytes(of: word.littleEndian) { memcpy(base, $0.baseAddress!, filled) }
            while filled < size {
                let step = min(filled, size - filled)
                memcpy(base + filled, base, step)
                filled += step
            }
            count = size
        }
    }
}
