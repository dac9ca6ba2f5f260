import Glibc

/// A log line that allocates nothing: a fixed message written straight to standard error.
/// For the moments when malloc has just refused memory and a formatted log line would trap.
enum RawLog {
    static func write(_ message: StaticString) {
        _ = Glibc.write(2, message.utf8Start, message.utf8CodeUnitCount)
    }
}
