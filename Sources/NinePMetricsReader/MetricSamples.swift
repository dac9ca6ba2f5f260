/// One line of the Prometheus text format: `name{label="value",...} number`.
public struct MetricSample: Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    public var value: Double

    public init(name: String, labels: [String: String] = [:], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }
}

/// The samples of one scrape, by name.
public struct MetricSamples: Sendable {
    public private(set) var byName: [String: [MetricSample]] = [:]

    public init(_ samples: [MetricSample]) {
        for sample in samples { byName[sample.name, default: []].append(sample) }
    }

    /// Parses the text format (version 0.0.4): comments and blank lines are skipped, label
    /// values are unescaped (\\, \", \n). A line that is not a sample is an error naming it.
    public init(parsing text: String) throws(ParseError) {
        var samples: [MetricSample] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop { $0 == " " }
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let sample = Self.sample(trimmed) else {
                throw ParseError(description: "line \(number + 1) is not a metric sample: \(line.prefix(120))")
            }
            samples.append(sample)
        }
        self.init(samples)
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public subscript(name: String) -> [MetricSample] { byName[name] ?? [] }

    /// The sum of every sample of `name` whose labels include `matching`.
    public func sum(_ name: String, _ matching: [String: String] = [:]) -> Double {
        self[name].filter { sample in matching.allSatisfy { sample.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }

    private static func sample(_ line: Substring) -> MetricSample? {
        var index = line.startIndex
        while index < line.endIndex, line[index] != "{", line[index] != " " { index = line.index(after: index) }
        let name = String(line[line.startIndex..<index])
        guard !name.isEmpty else { return nil }
        var labels: [String: String] = [:]
        if index < line.endIndex, line[index] == "{" {
            index = line.index(after: index)
            while index < line.endIndex, line[index] != "}" {
                guard let equals = line[index...].firstIndex(of: "=") else { return nil }
                let key = line[index..<equals].trimmingSpacesAndCommas()
                var cursor = line.index(after: equals)
                guard cursor < line.endIndex, line[cursor] == "\"" else { return nil }
                cursor = line.index(after: cursor)
                var value = ""
                while cursor < line.endIndex, line[cursor] != "\"" {
                    if line[cursor] == "\\", line.index(after: cursor) < line.endIndex {
                        cursor = line.index(after: cursor)
                        value.append(line[cursor] == "n" ? "\n" : line[cursor])
                    } else {
                        value.append(line[cursor])
                    }
                    cursor = line.index(after: cursor)
                }
                guard cursor < line.endIndex else { return nil }
                labels[key] = value
                index = line.index(after: cursor)
                while index < line.endIndex, line[index] == "," || line[index] == " " { index = line.index(after: index) }
            }
            guard index < line.endIndex else { return nil }
            index = line.index(after: index)
        }
        let rest = line[index...].split(separator: " ", omittingEmptySubsequences: true)
        guard let first = rest.first else { return nil }
        let value: Double
        switch first {
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default:
            guard let number = Double(first) else { return nil }
            value = number
        }
        return MetricSample(name: name, labels: labels, value: value)
    }
}

extension Substring {
    fileprivate func trimmingSpacesAndCommas() -> String {
        String(drop { $0 == " " || $0 == "," }.reversed().drop { $0 == " " }.reversed())
    }
}
