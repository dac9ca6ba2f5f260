import Glibc
import Synchronization

/// Exports by aname: opening them, choosing one for a Tattach, and replacing the list at run
/// time (ninepd's SIGHUP). Nothing here is on the request path: attach allocates anyway.
extension FileServer {
    /// The exports now offered to new attaches, the default first.
    public var exports: [ExportConfiguration] { exportTable.withLock { $0.map(\.configuration) } }

    /// One line per export for logs: aname, directory, read-only or read-write, identity.
    public var exportSummaries: [String] { exportTable.withLock { $0.map(\.summary) } }

    /// The export a Tattach's aname selects: the default for an empty aname, else the one whose
    /// name or path it is; nil when none is.
    func export(forAname aname: String) -> Export<Backend>? {
        exportTable.withLock { table in
            if aname.isEmpty { return table.first }
            return table.first { $0.matches(aname: aname) }
        }
    }

    /// Replaces the export list for new attaches, all or nothing: every directory is opened
    /// first, and if one cannot be (or the list is not valid) the error says which and the
    /// old list stays. Fids attached before keep their export, policy and root until they clunk.
    @discardableResult
    public func replaceExports(_ configurations: [ExportConfiguration]) throws(StartError) -> ExportChanges {
        let opened = try Self.openExports(configurations, first: nil, origin: backend, privileged: privileged)
        let old = exportTable.withLock { table in
            let old = table
            table = opened
            return old
        }
        return ExportChanges(old: old.map(\.configuration), new: configurations)
    }

    /// Opens `configurations` (checked: at least one, names clean and distinct, at most one
    /// unnamed and only first): `first`, when given, serves the first; the others are
    /// `origin.sibling(exporting:)`.
    static func openExports(
        _ configurations: [ExportConfiguration], first: Backend?, origin: Backend, privileged: Bool
    ) throws(StartError) -> [Export<Backend>] {
        try validate(configurations)
        var exports: [Export<Backend>] = []
        for (index, configuration) in configurations.enumerated() {
            let tree: Backend
            if index == 0, let first {
                tree = first
            } else {
                do throws(FileSystemError) {
                    tree = try origin.sibling(exporting: configuration.path)
                } catch {
                    let reason = String(decoding: strerrorBytes(error.errno), as: UTF8.self)
                    throw StartError(description: "cannot open export \(configuration.label): \(reason); give an existing directory")
                }
            }
            if configuration.access == .client && configuration.squash != nil {
                throw StartError(description: "export \(configuration.label): access client and a squash user contradict each other; choose one")
            }
            exports.append(Export(configuration: configuration, backend: tree, privileged: privileged))
        }
        return exports
    }

    private static func validate(_ configurations: [ExportConfiguration]) throws(StartError) {
        guard !configurations.isEmpty else { throw StartError(description: "no export: give at least one") }
        var seen: Set<String> = []
        for (index, configuration) in configurations.enumerated() {
            if configuration.name.isEmpty {
                guard index == 0, configurations.count == 1 else {
                    throw StartError(description: "export \(index + 1) (\(configuration.path)) has no name: with several exports each needs one")
                }
                continue
            }
            guard ExportConfiguration.isCleanName(configuration.name) else {
                throw StartError(description: "export name '\(configuration.name)' is not a clean name: use letters, digits, '.', '-' and '_'")
            }
            guard seen.insert(configuration.name).inserted else {
                throw StartError(description: "export name '\(configuration.name)' is given twice: each aname names one export")
            }
        }
    }
}

/// What a `replaceExports` changed, by aname, for its log line.
public struct ExportChanges: Sendable, Equatable, CustomStringConvertible {
    public var added: [String] = []
    public var removed: [String] = []
    public var changed: [String] = []

    init(old: [ExportConfiguration], new: [ExportConfiguration]) {
        for export in new {
            if let before = old.first(where: { $0.name == export.name }) {
                if before != export { changed.append(export.name) }
            } else {
                added.append(export.name)
            }
        }
        removed = old.map(\.name).filter { name in !new.contains { $0.name == name } }
    }

    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }

    public var description: String {
        if isEmpty { return "exports unchanged" }
        func names(_ list: [String]) -> String { list.map { $0.isEmpty ? "(default)" : $0 }.joined(separator: ", ") }
        var parts: [String] = []
        if !added.isEmpty { parts.append("added \(names(added))") }
        if !removed.isEmpty { parts.append("removed \(names(removed))") }
        if !changed.isEmpty { parts.append("changed \(names(changed))") }
        return "exports " + parts.joined(separator: "; ")
    }
}
