import Foundation
import NinePTestSupport
import Testing

/// The libFuzzer target for the decoder (Fuzz/DecoderFuzz.swift) runs a million inputs with
/// AddressSanitizer and finds no crash and no re-encoding mismatch.
@Suite(.serialized)
struct DecoderFuzzTests {
    @Test func millionExecutionsWithoutCrash() throws {
        let script = Paths.packageRoot.appendingPathComponent("scripts/fuzz-decoder").path
        let outcome = try run(script, ["1000000"], timeout: .seconds(900))
        print(outcome.output.split(separator: "\n").filter { $0.contains("DONE") || $0.contains("Done") }.joined(separator: "\n"))
        #expect(outcome.status == 0, "the fuzzer failed: \(outcome.output.suffix(4000))")
        #expect(outcome.output.contains("Done 1000000 runs"), "the fuzzer did not complete 1,000,000 runs: \(outcome.output.suffix(2000))")
    }
}
