/// NinePTestSupport: what the test targets share, so that no fixture is written twice.
///
/// - Servers in the same process, reached over a socketpair (no port, no network).
/// - A raw wire client that sends any frame, well-formed or not.
/// - An in-memory file system backend with fault injection (errors, slow and blocking calls).
/// - Helpers for FIFOs, descriptors and an injectable clock.
public enum NinePTestSupport {}
