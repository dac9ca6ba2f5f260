/// `ninepd --config FILE`, as the YAML file spells it (keys in kebab-case, as the flags). Every
/// key is optional but `exports`; a server-wide key that is absent takes the flag's value or
/// its default. `ConfigLoader` reads it, checks it and says where a problem is.
struct ConfigFile: Decodable, Equatable {
    var listen: [String]?
    var msize: String?
    var maxConnections: Int?
    var maxFids: Int?
    var maxRequests: Int?
    var workers: Int?
    var memoryBudget: String?
    var oomScoreAdj: Int?
    var mlockall: Bool?
    var writeBehind: String?
    var socketMode: String?
    var clientTimeout: Int?
    var logLevel: String?
    /// Where the metrics endpoint listens (as --metrics-listen).
    var metricsListen: String?
    var exports: [Export]

    struct Export: Decodable, Equatable {
        var name: String
        var path: String
        var readOnly: Bool?
        var squashUid: UInt32?
        var squashGid: UInt32?
        var allowUsers: [UInt32]?
        var access: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, path
            case readOnly = "read-only"
            case squashUid = "squash-uid"
            case squashGid = "squash-gid"
            case allowUsers = "allow-users"
            case access
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case listen, msize
        case maxConnections = "max-connections"
        case maxFids = "max-fids"
        case maxRequests = "max-requests"
        case workers
        case memoryBudget = "memory-budget"
        case oomScoreAdj = "oom-score-adj"
        case mlockall
        case writeBehind = "write-behind"
        case socketMode = "socket-mode"
        case clientTimeout = "client-timeout"
        case logLevel = "log-level"
        case metricsListen = "metrics-listen"
        case exports
    }

    /// `listen` may be one address or a list of them.
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let one = try? c.decodeIfPresent(String.self, forKey: .listen) {
            listen = [one]
        } else {
            listen = try c.decodeIfPresent([String].self, forKey: .listen)
        }
        msize = try c.decodeIfPresent(String.self, forKey: .msize)
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections)
        maxFids = try c.decodeIfPresent(Int.self, forKey: .maxFids)
        maxRequests = try c.decodeIfPresent(Int.self, forKey: .maxRequests)
        workers = try c.decodeIfPresent(Int.self, forKey: .workers)
        memoryBudget = try c.decodeIfPresent(String.self, forKey: .memoryBudget)
        oomScoreAdj = try c.decodeIfPresent(Int.self, forKey: .oomScoreAdj)
        mlockall = try c.decodeIfPresent(Bool.self, forKey: .mlockall)
        writeBehind = try c.decodeIfPresent(String.self, forKey: .writeBehind)
        socketMode = try c.decodeIfPresent(String.self, forKey: .socketMode)
        clientTimeout = try c.decodeIfPresent(Int.self, forKey: .clientTimeout)
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel)
        metricsListen = try c.decodeIfPresent(String.self, forKey: .metricsListen)
        exports = try c.decode([Export].self, forKey: .exports)
    }
}
