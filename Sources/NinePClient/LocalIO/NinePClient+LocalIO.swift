extension NinePClient {
    /// Whether this session moves file data by localio descriptor where the server grants one
    /// (docs/LOCALIO.md): it negotiated the extension and proved locality. Individual files
    /// may still be refused a grant (`RemoteFile.usesLocalIO` says per file).
    public var usesLocalIO: Bool { connection.localIO }
}
