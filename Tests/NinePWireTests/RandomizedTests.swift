@testable import NinePWire
import Testing

/// A deterministic generator (SplitMix64) so that a failure reproduces.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Feeds random and mutated frames to both decoders: nothing traps, and whatever decodes
/// re-encodes to the very same bytes (the encoding is canonical).
@Suite("Randomized decoding")
struct RandomizedTests {
    let a = Arena()

    struct Stats {
        var inputs = 0
        var decodedT = 0
        var decodedR = 0
        var failures: [String] = []

        mutating func fail(_ message: String) {
            if failures.count < 10 { failures.append(message) }
        }
    }

    /// Decodes `bytes` every way and checks the outcome.
    func check(_ bytes: [UInt8], _ stats: inout Stats) {
        stats.inputs += 1
        bytes.withUnsafeBytes { frame in
            for msize: UInt32 in [64, 8192] {
                do throws(WireError) {
                    let message = try TMessage.decode(frame, msize: msize)
                    if msize == 8192 { stats.decodedT += 1 }
                    let again = try reencoded(message)
                    if again != bytes { stats.fail("T re-encoding differs: \(hexString(bytes)) -> \(hexString(again))") }
                    if case let .walk(_, _, names) = message.request {
                        var n = 0
                        for _ in names { n += 1 }
                        if n != names.count || n > NineP.maxWalkElements { stats.fail("WalkNames: \(hexString(bytes))") }
                    }
                } catch {
                    if error == .noRoom { stats.fail("T decode threw noRoom: \(hexString(bytes))") }
                }
                do throws(WireError) {
                    let message = try RMessage.decode(frame, msize: msize)
                    if msize == 8192 { stats.decodedR += 1 }
                    let again = try reencoded(message)
                    if again != bytes { stats.fail("R re-encoding differs: \(hexString(bytes)) -> \(hexString(again))") }
                    switch message.response {
                    case let .walk(qids):
                        if Array(qids).count != qids.count || qids.count > NineP.maxWalkElements {
                            stats.fail("QidList: \(hexString(bytes))")
                        }
                    case let .readdir(entries):
                        let covered = entries.reduce(0) { $0 + DirEntry.wireSize(nameLength: $1.name.count) }
                        if covered != entries.data.count { stats.fail("DirEntries: \(hexString(bytes))") }
                    default:
                        break
                    }
                } catch {
                    if error == .noRoom { stats.fail("R decode threw noRoom: \(hexString(bytes))") }
                }
            }
        }
    }

    /// Bytes biased towards small values, so that counts and lengths are often plausible.
    func plausibleBytes(_ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in
            switch rng.next() % 4 {
            case 0, 1: 0
            case 2: UInt8.random(in: 0...24, using: &rng)
            default: UInt8.random(in: 0...255, using: &rng)
            }
        }
    }

    func mutate(_ frame: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var f = frame
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            let position = f.isEmpty ? 0 : Int.random(in: 0..<f.count, using: &rng)
            // In-place changes are the most likely, so that many mutants still decode and
            // exercise the re-encoding check; the others shift or cut the fields.
            switch f.isEmpty ? 9 : rng.next() % 10 {
            case 0, 1: f[position] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
            case 2, 3: f[position] = UInt8.random(in: 0...255, using: &rng)
            case 4, 5: f[position] = [0, 1, 0x10, 0x11, 0x7F, 0x80, 0xFF].randomElement(using: &rng)!
            case 6: f.insert(UInt8.random(in: 0...255, using: &rng), at: position)
            case 7: f.remove(at: position)
            case 8: f = Array(f.prefix(position))
            default: f += plausibleBytes(Int.random(in: 1...16, using: &rng), &rng)
            }
        }
        // Usually keep the size field consistent so that the body parsers are reached.
        return rng.next() % 10 < 7 ? withSize(f) : f
    }

    @Test func twentyThousandRandomInputs() throws {
        var valid = try allSampleFrames(a).map(\.frame)
        valid += (Golden.requests + Golden.responses).map(\.1)
        var rng = SplitMix64(seed: 0x9_2000_4C)
        var stats = Stats()
        // A quarter raw random bytes, a quarter random bodies behind a consistent header and a
        // known type, half mutants of valid frames.
        for i in 0..<20_000 {
            let input: [UInt8]
            switch i % 4 {
            case 0:
                input = (0..<Int.random(in: 0...48, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:
                let type = MessageType.allCases.randomElement(using: &rng)!.rawValue
                let tag = plausibleBytes(2, &rng)
                input = withSize([0, 0, 0, 0, type] + tag + plausibleBytes(Int.random(in: 0...64, using: &rng), &rng))
            default:
                input = mutate(valid.randomElement(using: &rng)!, &rng)
            }
            check(input, &stats)
        }
        #expect(stats.failures.isEmpty, "\(stats.failures.joined(separator: "\n"))")
        #expect(stats.inputs == 20_000)
        // The generator must reach the decoders' success paths, not only their error paths.
        #expect(stats.decodedT > 1000, "only \(stats.decodedT) T decodes")
        #expect(stats.decodedR > 1000, "only \(stats.decodedR) R decodes")
    }

    /// Every byte of every golden frame replaced by a few interesting values.
    @Test func everySingleByteMutationOfTheGoldenFrames() {
        var stats = Stats()
        for (_, frame) in Golden.requests + Golden.responses {
            for position in frame.indices {
                for value: UInt8 in [0, 1, 2, 0x10, 0x11, 0x7F, 0x80, 0xFE, 0xFF, frame[position] ^ 0x01] {
                    var mutated = frame
                    mutated[position] = value
                    check(mutated, &stats)
                }
            }
        }
        #expect(stats.failures.isEmpty, "\(stats.failures.joined(separator: "\n"))")
        #expect(stats.decodedT + stats.decodedR > 5000)
    }
}
