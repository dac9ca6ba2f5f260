/// NinePTestSupport: what the test targets share, so that no fixture is written twice.
///
/// - `TestServer`: a server in this process, its clients on socketpairs (no port, no network);
///   `FakeServer`: a hand-written server for client tests, on a socketpair too.
/// - `WireClient`: a raw wire client that sends any frame, well-formed or not, and
///   `FlushLedger`, which checks a connection's traffic against DESIGN.md "Tflush, exactly".
/// - `FIFO`: a named pipe the test fills or feeds from its own side, for requests that block.
/// - Host-side helpers: temporary directories, files, descriptors, child processes.
/// - An in-memory file system backend with fault injection (InMemoryBackend/).
public enum NinePTestSupport {}
