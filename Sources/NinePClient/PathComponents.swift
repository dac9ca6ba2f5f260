/// A slash-separated remote path split into the names Twalk takes. Empty names and "." are
/// dropped ("/a//b/." is a, b); ".." is kept and resolved by the server.
struct PathComponents {
    let names: [String]

    init(_ path: String) {
        names = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }.map(String.init)
    }

    /// The parent's names and the last name; nil for the root.
    var parentAndName: (parent: [String], name: String)? {
        guard let last = names.last, last != ".." else { return nil }
        return (Array(names.dropLast()), last)
    }
}
