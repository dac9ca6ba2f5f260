import Glibc
import NinePMemory
import Testing

/// `reserveResident` leaves the table empty with its room kept, and that room is resident: filling
/// it afterwards neither grows the table nor faults new pages in.
@Suite struct ResidentDictionaryTests {
    @Test func roomIsKeptAndEmpty() {
        var table: [UInt64: UInt64] = [:]
        table.reserveResident(10_000, value: 7)
        let capacity = table.capacity
        #expect(table.isEmpty)
        #expect(capacity >= 10_000)
        for i in 0..<10_000 { table[UInt64(i) &* 0x9E37_79B9_7F4A_7C15] = UInt64(i) }
        #expect(table.capacity == capacity, "filling the reserved room grew the table")
        #expect(table.count == 10_000)
    }

    @Test func filledRoomFaultsNoPagesIn() throws {
        // 1 << 18 entries: 512K buckets of 8-byte keys and values, 8 MiB that a table made with
        // reserveCapacity alone faults in page by page as it fills (the control). Other tests
        // run in this process at the same time and may fault pages in during a measurement, so
        // up to three attempts: one clean one proves it.
        let entries = 1 << 18
        // Tables this large then come from mmap each time, so every attempt starts from pages
        // never touched (glibc would otherwise raise its mmap threshold after the first free and
        // hand the next table already-resident heap).
        MemoryHardening.boundHeapRetention()
        func growth(resident: Bool) throws -> Int {
            var table: [UInt64: UInt64] = [:]
            if resident { table.reserveResident(entries, value: 0) } else { table.reserveCapacity(entries) }
            let before = try #require(ProcessMemory.residentAnonymousBytes())
            for i in 0..<entries { table[UInt64(i) &* 0x9E37_79B9_7F4A_7C15] = 1 }
            let after = try #require(ProcessMemory.residentAnonymousBytes())
            return after - before
        }
        var seen: [(control: Int, resident: Int)] = []
        for _ in 0..<3 {
            let control = try growth(resident: false)
            let resident = try growth(resident: true)
            seen.append((control, resident))
            if control >= 4 << 20 && resident < control / 4 { break }
        }
        let last = seen.last!
        #expect(last.control >= 4 << 20 && last.resident < last.control / 4,
                "KiB faulted in while filling (reserveCapacity, reserveResident): \(seen.map { ($0.control >> 10, $0.resident >> 10) })")
    }
}
