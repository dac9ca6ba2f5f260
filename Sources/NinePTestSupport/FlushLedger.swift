import Glibc
import NinePWire
import Testing

/// Everything one connection sent and received, per tag, checked against DESIGN.md "Tflush,
/// exactly" as replies arrive:
/// - each Tflush gets exactly one reply, Rflush (never Rlerror), with its own tag;
/// - the reply of the flushed request (or Rflush of a flushed Tflush), if any, comes before the
///   Rflush; nothing for it follows the Rflush;
/// - Rflushes of several flushes of one request come in the order the flushes were sent;
/// - a request gets at most one reply; at the end every request has its reply or an Rflush
///   (`unresolved`);
/// - a reply never arrives for a tag that is not in flight.
///
/// Tags are reserved from the send until the request is resolved (reply, or an Rflush of a
/// flush of it) AND every Tflush naming it as oldtag has its Rflush; `freeTag` hands them out
/// again, preferring the most recently freed so that tags are reused as soon as they may be.
public final class FlushLedger {
    public let name: String
    public let clock = ContinuousClock()
    public let start: ContinuousClock.Instant
    /// Rflush later than this after its Tflush (or after the reply of the request it flushed,
    /// when that came later) is an issue where latency bounds are enforced (`LatencyBounds`).
    public var flushLatencyLimit: Duration = .seconds(1)

    public enum Outcome: Equatable { case pending, replied, aborted }

    public final class Instance {
        public let id: Int
        public let tag: UInt16
        public let label: String
        public let sentAt: ContinuousClock.Instant
        public let isFlush: Bool
        /// For a Tflush: what its oldtag named when it was sent (a request in flight, a resolved
        /// one whose tag is still reserved, or a placeholder for a free tag).
        public let target: Instance?
        public var outcome = Outcome.pending
        public var resolvedAt: ContinuousClock.Instant?
        /// The Tflush whose Rflush ended this request without a reply.
        public var abortedBy: Instance?
        /// Tflushes sent naming this tag, in send order.
        public var flushers: [Instance] = []
        public var pendingTargeters = 0
        /// A request that cannot complete (a FIFO read with no data): a reply is an issue.
        public var mustNotReply = false
        /// Checks the reply; returns what is wrong with it.
        public var validate: ((Response) -> String?)?
        /// Called once when resolved: with the reply, or nil when aborted.
        public var onResolve: ((Response?) -> Void)?
        /// A placeholder for a tag that was not in use when a Tflush named it.
        public var placeholder = false

        public init(id: Int, tag: UInt16, label: String, sentAt: ContinuousClock.Instant, isFlush: Bool, target: Instance?) {
            self.id = id
            self.tag = tag
            self.label = label
            self.sentAt = sentAt
            self.isFlush = isFlush
            self.target = target
        }
    }

    private var nextID = 0
    public private(set) var owners: [UInt16: Instance] = [:]
    private var lastUse: [UInt16: Instance] = [:]
    private var everUsed: Set<UInt16> = []
    public private(set) var recentlyFreed: [UInt16] = []
    public let tagPool: ClosedRange<UInt16>
    private var log: [String] = []
    private var logHead = 0
    private let logCapacity = 600
    public private(set) var issues = 0
    public let maxIssues = 25

    // Counts for the report.
    public private(set) var requests = 0
    public private(set) var flushes = 0
    public private(set) var aborted = 0
    public private(set) var repliedThenFlushed = 0
    public private(set) var flushesOfFlushes = 0
    public private(set) var flushesOfFreeTags = 0
    public private(set) var repeatedFlushes = 0
    public private(set) var tagReuses = 0
    public private(set) var maxFlushLatency: Duration = .zero
    public private(set) var maxAbortLatency: Duration = .zero
    private var abortLatencyTotal: Duration = .zero

    public init(name: String, tags: ClosedRange<UInt16>) {
        self.name = name
        tagPool = tags
        start = clock.now
        recentlyFreed = Array(tags)
    }

    // MARK: Tags

    public var busyCount: Int { owners.count }

    public func isFree(_ tag: UInt16) -> Bool { owners[tag] == nil }

    /// A free tag of the pool: usually the most recently freed one (immediate reuse).
    public func freeTag(using rng: inout SeededGenerator, preferRecent: Double = 0.6, excluding excluded: UInt16? = nil) -> UInt16? {
        recentlyFreed.removeAll { owners[$0] != nil }
        let candidates = recentlyFreed.indices.filter { recentlyFreed[$0] != excluded }
        guard let last = candidates.last else { return nil }
        if Double.random(in: 0..<1, using: &rng) < preferRecent {
            return recentlyFreed.remove(at: last)
        }
        return recentlyFreed.remove(at: candidates.randomElement(using: &rng)!)
    }

    // MARK: Recording

    private func note(_ line: String) {
        let entry = "+\(ms(clock.now - start)) \(line)"
        if log.count < logCapacity {
            log.append(entry)
        } else {
            log[logHead] = entry
            logHead = (logHead + 1) % logCapacity
        }
    }

    /// The last wire events (all, or those naming one of `tags`).
    public func wireLog(tags: Set<UInt16>? = nil, last: Int = 25) -> String {
        let ordered = Array(log[logHead...] + log[..<logHead])
        let chosen = tags.map { wanted in
            ordered.filter { line in wanted.contains { line.contains(" tag \($0) ") || line.contains("oldtag \($0) ") } }
        } ?? ordered
        return chosen.suffix(last).joined(separator: "\n    ")
    }

    /// Where issues go (a test of the ledger itself collects them instead).
    public var sink: ((String, SourceLocation) -> Void) = { message, location in Issue.record("\(message)", sourceLocation: location) }
    /// Every issue message, for tests that inspect them.
    public private(set) var issueMessages: [String] = []

    public func issue(_ message: String, tags: Set<UInt16>, sourceLocation: SourceLocation = #_sourceLocation) {
        issues += 1
        issueMessages.append(message)
        if issues <= maxIssues {
            sink("[\(name)] \(message)\n  wire (tags \(tags.sorted())):\n    \(wireLog(tags: tags))", sourceLocation)
        } else if issues == maxIssues + 1 {
            sink("[\(name)] more than \(maxIssues) issues; the rest are not recorded", sourceLocation)
        }
    }

    private func describe(_ instance: Instance?) -> String {
        guard let instance else { return "never used" }
        var text = "\(instance.label) sent at +\(ms(instance.sentAt - start))"
        switch instance.outcome {
        case .pending: text += ", pending"
        case .replied: text += ", answered at +\(ms((instance.resolvedAt ?? start) - start))"
        case .aborted:
            text += ", flushed (no reply) by Rflush tag \(instance.abortedBy?.tag ?? 0) at +\(ms((instance.resolvedAt ?? start) - start))"
        }
        return text
    }

    /// Records a request sent with `tag` (which must be free).
    @discardableResult
    public func sentRequest(tag: UInt16, label: String) -> Instance {
        precondition(owners[tag] == nil, "test bug: tag \(tag) reused while reserved")
        requests += 1
        return reserve(tag, label: label, target: nil)
    }

    /// Records a Tflush(oldtag) sent with `tag` (which must be free).
    @discardableResult
    public func sentFlush(tag: UInt16, oldtag: UInt16) -> Instance {
        precondition(owners[tag] == nil, "test bug: tag \(tag) reused while reserved")
        var target = owners[oldtag]
        if target == nil {
            // A tag not in flight: reserve it until this flush is answered, so no new request
            // can be mistaken for what it names.
            nextID += 1
            let placeholder = Instance(
                id: nextID, tag: oldtag, label: "(free tag)", sentAt: clock.now, isFlush: false, target: nil)
            placeholder.placeholder = true
            placeholder.outcome = .replied
            placeholder.resolvedAt = clock.now
            owners[oldtag] = placeholder
            target = placeholder
            flushesOfFreeTags += 1
        } else if target!.outcome != .pending {
            flushesOfFreeTags += 1
        }
        flushes += 1
        return reserve(tag, label: "Tflush oldtag \(oldtag) ", target: target)
    }

    /// A new instance holding `tag` (a Tflush when it has a target, which it then names).
    private func reserve(_ tag: UInt16, label: String, target: Instance?) -> Instance {
        nextID += 1
        let instance = Instance(id: nextID, tag: tag, label: label, sentAt: clock.now, isFlush: target != nil, target: target)
        if let target {
            if target.isFlush { flushesOfFlushes += 1 }
            if !target.flushers.isEmpty { repeatedFlushes += 1 }
            target.flushers.append(instance)
            target.pendingTargeters += 1
        }
        owners[tag] = instance
        if everUsed.contains(tag) { tagReuses += 1 }
        everUsed.insert(tag)
        note("→ tag \(tag) \(label)")
        return instance
    }

    private func release(_ instance: Instance) {
        guard instance.outcome != .pending, instance.pendingTargeters == 0, owners[instance.tag] === instance else { return }
        owners[instance.tag] = nil
        lastUse[instance.tag] = instance
        if tagPool.contains(instance.tag) { recentlyFreed.append(instance.tag) }
    }

    /// Records and checks one reply.
    public func received(_ message: RMessage) {
        let now = clock.now
        let tag = message.tag
        let kind: String
        if case let .lerror(code) = message.response { kind = "Rlerror(\(code))" } else { kind = "\(message.response.type)" }
        note("← tag \(tag) \(kind)")
        guard let instance = owners[tag], !instance.placeholder else {
            issue("\(kind) for tag \(tag), which is not in flight (last use: \(describe(owners[tag] ?? lastUse[tag])))", tags: [tag])
            return
        }
        guard instance.outcome == .pending else {
            issue("a second reply, \(kind), for tag \(tag): \(describe(instance))", tags: [tag])
            return
        }
        instance.outcome = .replied
        instance.resolvedAt = now
        if instance.isFlush {
            // A request that runs to its end answers first; its Rflush must follow promptly.
            var reference = instance.sentAt
            if let target = instance.target, target.outcome == .replied, let answered = target.resolvedAt, answered > reference {
                reference = answered
            }
            let latency = now - reference
            maxFlushLatency = max(maxFlushLatency, latency)
            if message.response != .flush {
                issue("Tflush tag \(tag) (oldtag \(instance.target?.tag ?? 0)) answered with \(kind)", tags: [tag])
            }
            if latency > flushLatencyLimit && !LatencyBounds.enforced {
                print("[\(name)] latency over its bound (asserted in the whole-system phase, NINEP_LATENCY_BOUNDS=1): Rflush tag \(tag) \(ms(latency)) after what it waited for, limit \(ms(flushLatencyLimit))")
            } else if latency > flushLatencyLimit {
                issue("Rflush tag \(tag) came \(ms(now - instance.sentAt)) after its Tflush, \(ms(latency)) after what it waited for (limit \(ms(flushLatencyLimit))); it flushed \(describe(instance.target))", tags: [tag, instance.target?.tag ?? tag])
            }
            if let target = instance.target {
                for earlier in target.flushers {
                    if earlier === instance { break }
                    if earlier.outcome == .pending {
                        issue("Rflush tag \(tag) arrived before Rflush tag \(earlier.tag), sent earlier for the same oldtag \(target.tag)", tags: [tag, earlier.tag, target.tag])
                    }
                }
                if target.outcome == .pending {
                    if target.isFlush {
                        issue("Rflush tag \(tag) (a flush of Tflush tag \(target.tag)) arrived before Rflush tag \(target.tag): that Rflush would follow the Rflush of its flush", tags: [tag, target.tag])
                    } else {
                        target.outcome = .aborted
                        target.abortedBy = instance
                        target.resolvedAt = now
                        aborted += 1
                        let abortLatency = now - instance.sentAt
                        maxAbortLatency = max(maxAbortLatency, abortLatency)
                        abortLatencyTotal += abortLatency
                        target.onResolve?(nil)
                        release(target)
                    }
                }
                target.pendingTargeters -= 1
                release(target)
            }
        } else {
            if instance.mustNotReply {
                issue("\(instance.label) cannot complete, yet it was answered: \(kind)", tags: [tag])
            } else if let problem = instance.validate?(message.response) {
                issue("\(instance.label): \(problem)", tags: [tag])
            }
            // Every flush naming it so far was sent before this reply.
            if !instance.flushers.isEmpty { repliedThenFlushed += 1 }
            instance.onResolve?(message.response)
        }
        release(instance)
    }

    /// Requests and flushes without a reply or an Rflush.
    public func unresolved() -> [Instance] {
        owners.values.filter { $0.outcome == .pending }.sorted { $0.id < $1.id }
    }

    public func describeUnresolved(limit: Int = 12) -> String {
        let all = unresolved()
        let shown = all.prefix(limit).map { instance in
            var text = "tag \(instance.tag) \(instance.label) (sent +\(ms(instance.sentAt - start)), \(ms(clock.now - instance.sentAt)) ago"
            if !instance.flushers.isEmpty {
                text += "; flushed by tags \(instance.flushers.map { "\($0.tag)\($0.outcome == .pending ? " (no Rflush)" : "")" }.joined(separator: ", "))"
            }
            return text + ")"
        }
        return shown.joined(separator: "; ") + (all.count > limit ? "; and \(all.count - limit) more" : "")
    }

    /// One line on an instance, for messages.
    public func summary(_ instance: Instance?) -> String { describe(instance) }

    public var meanAbortLatency: Duration { aborted == 0 ? .zero : abortLatencyTotal / aborted }
}
