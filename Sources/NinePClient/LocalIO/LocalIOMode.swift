/// Whether a client moves file data by descriptor when the server shares its host
/// (docs/LOCALIO.md): the server passes a descriptor for each opened regular file over the
/// unix socket, and reads and writes become pread and pwrite on it.
public enum LocalIOMode: Sendable, Equatable {
    /// Offer localio on unix sockets and use it where the server grants it; otherwise (TCP,
    /// servers without the extension such as diod, refused grants) go through 9P silently.
    case automatic
    /// Never offer it: every byte goes through 9P.
    case disabled
    /// Connecting fails when localio cannot be had: the transport is not a unix socket, the
    /// server does not offer the extension, or the locality proof is refused. Individual
    /// grants may still be refused (directories, FIFOs, another identity): those files use 9P.
    case required
}
