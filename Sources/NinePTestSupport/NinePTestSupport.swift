/// NinePTestSupport: what the test targets share, so that no fixture is written twice.
///
/// - `TestServer`: a server in this process, its clients on socketpairs (no port, no network);
///   `FakeServer`: a hand-written server for client tests, on a socketpair too.
/// - `WireClient`: a raw wire client that sends any frame, well-formed or not, and
///   `FlushLedger`, which checks a connection's traffic against DESIGN.md "Tflush, exactly".
/// - `FIFO` and `WireClient.openFIFO`: named pipes for requests that wait on the outside world.
/// - `LatencyBounds`/`expectPrompt`: wall-clock bounds asserted only where the suite runs alone.
/// - Host-side helpers: temporary directories, files, descriptors, child processes.
/// - An in-memory file system backend with fault injection (InMemoryBackend/).
public enum NinePTestSupport {}
