/// A buffer lent to one child task at a time (a transfer's chunk, a bench worker's buffer).
/// `@unchecked Sendable`: its owner hands it to exactly one task and takes it back, or frees
/// it, only after that task has finished.
struct OwnedBuffer: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
}
