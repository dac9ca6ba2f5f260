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
        // reserveCapacity alone faults in page by page as it fills (the control). Counted as
        // this thread's page faults (getrusage RUSAGE_THREAD): the fill runs on one thread, and
        // other tests running in this process at the same time fault on theirs (the process's
        // RssAnon, measured before, moved by tens of MiB with them).
        let entries = 1 << 18
        // Tables this large then come from mmap each time, so every fill starts from pages
        // never touched (glibc would otherwise raise its mmap threshold after the first free and
        // hand the next table already-resident heap).
        MemoryHardening.boundHeapRetention()
        func threadFaults() -> Int {
            var usage = rusage()
            // RUSAGE_THREAD (1): Glibc leaves it out of Swift (it needs _GNU_SOURCE).
            getrusage(__rusage_who_t(1), &usage)
            return usage.ru_minflt + usage.ru_majflt
        }
        func faults(resident: Bool) -> Int {
            var table: [UInt64: UInt64] = [:]
            if resident { table.reserveResident(entries, value: 0) } else { table.reserveCapacity(entries) }
            let before = threadFaults()
            for i in 0..<entries { table[UInt64(i) &* 0x9E37_79B9_7F4A_7C15] = 1 }
            return threadFaults() - before
        }
        let control = faults(resident: false)
        let resident = faults(resident: true)
        // 8 MiB of 4 KiB pages: about 2,048 faults (fewer if the kernel maps huge pages).
        #expect(control >= 256, "filling a reserveCapacity table faulted only \(control) pages in: the control shows nothing")
        #expect(resident < control / 4, "page faults while filling: reserveCapacity \(control), reserveResident \(resident)")
    }
}
