import Glibc
import NinePMemory
import NinePServer
import Synchronization

/// The calls of `FileSystemBackend` a fault can be planned for (one per method that can fail,
/// `stat(_:_:)` by name being `statAt`).
public enum BackendOperation: String, CaseIterable, Sendable {
    case openRoot, duplicate, lookup, lookupParent, stat, statAt, locate
    case open, openAt, openDirectoryAgain
    case read, write, readStream, writeStream, sync
    case changeMode, changeOwner, truncate, setTimes, changeOwnerAt, changeModeAt, statfs
    case seekDirectory, readDirectory
    case makeDirectory, makeNode, makeSymlink, link, rename, unlink, readLink
    case getXattr, listXattrs, setXattr, removeXattr
    case setLock, getLock
    case reopenEvicted
}

/// What a test wants of the backend's calls: failures with an errno, delays, and calls that
/// block until the test releases them. Thread-safe: a test changes the plan while workers call.
///
/// A rule applies to one operation, optionally only where the call's subject is named `name`
/// (the name argument of a call by name, else the last name of the handle's file), for the
/// next `times` matching calls (nil: every one). Rules are tried in the order given; the first
/// that matches is used (and spent).
public final class FaultPlan: Sendable {
    public enum Action: Sendable {
        case fail(errno: Int32)
        case delay(milliseconds: Int)
        case block(Gate)
    }

    struct Rule {
        let operation: BackendOperation
        let name: String?
        var remaining: Int?
        let action: Action
    }

    private let rules = Mutex<[Rule]>([])
    /// Calls made per operation, faulted or not (for tests that check a call happened).
    private let counts = Mutex<[BackendOperation: Int]>([:])

    public init() {}

    /// `operation` fails with `errno`.
    public func fail(_ operation: BackendOperation, errno: Int32, name: String? = nil, times: Int? = 1) {
        add(Rule(operation: operation, name: name, remaining: times, action: .fail(errno: errno)))
    }

    /// `operation` takes `milliseconds` longer (then runs).
    public func delay(_ operation: BackendOperation, milliseconds: Int, name: String? = nil, times: Int? = 1) {
        add(Rule(operation: operation, name: name, remaining: times, action: .delay(milliseconds: milliseconds)))
    }

    /// `operation` waits until the returned gate is opened (then runs).
    @discardableResult
    public func block(_ operation: BackendOperation, name: String? = nil, times: Int? = 1) -> Gate {
        let gate = Gate()
        add(Rule(operation: operation, name: name, remaining: times, action: .block(gate)))
        return gate
    }

    /// Forgets every rule (blocked calls stay blocked until their gates open).
    public func clear() { rules.withLock { $0.removeAll() } }

    /// True when some rule is planned for `operation` (the backend then never takes a shortcut
    /// that would bypass it, e.g. a read served from "the page cache" on a reader thread).
    public func hasRule(for operation: BackendOperation) -> Bool {
        rules.withLock { $0.contains { $0.operation == operation } }
    }

    /// How many `operation` calls the backend has seen.
    public func calls(_ operation: BackendOperation) -> Int { counts.withLock { $0[operation] ?? 0 } }

    private func add(_ rule: Rule) { rules.withLock { $0.append(rule) } }

    /// Called by the backend at the start of `operation`, before it touches its tree (and
    /// without its lock, so a delayed or blocked call holds no one else up).
    func apply(_ operation: BackendOperation, name: () -> String?) throws(FileSystemError) {
        counts.withLock { $0[operation, default: 0] += 1 }
        let action: Action? = rules.withLock { rules in
            guard rules.contains(where: { $0.operation == operation }) else { return nil }
            let subject = rules.contains(where: { $0.operation == operation && $0.name != nil }) ? name() : nil
            guard let index = rules.firstIndex(where: { $0.operation == operation && ($0.name == nil || $0.name == subject) }) else {
                return nil
            }
            let action = rules[index].action
            if let remaining = rules[index].remaining {
                if remaining <= 1 { rules.remove(at: index) } else { rules[index].remaining = remaining - 1 }
            }
            return action
        }
        switch action {
        case nil: return
        case let .fail(errno): throw FileSystemError(errno: errno)
        case let .delay(milliseconds): usleep(UInt32(milliseconds * 1000))
        case let .block(gate): gate.pass()
        }
    }
}

/// A call held until the test opens the gate; the test can wait for a call to arrive.
public final class Gate: Sendable {
    private struct State {
        var open = false
        var arrived = 0
    }

    // ConditionLock (pthread mutex and condition): the blocked side sleeps, nothing polls.
    private let lock = ConditionLock()
    private let state = Mutex(State())

    public init() {}

    /// Lets every held call (and every later one) through.
    public func open() {
        lock.withLock {
            state.withLock { $0.open = true }
            lock.broadcast()
        }
    }

    /// Waits up to `milliseconds` for a call to reach the gate; true if one did.
    public func waitForArrival(milliseconds: Int = 5000) -> Bool {
        let deadline = MemoryClock.nanoseconds() + UInt64(milliseconds) * 1_000_000
        return lock.withLock {
            while state.withLock({ $0.arrived == 0 }) {
                if MemoryClock.nanoseconds() >= deadline { return false }
                lock.wait(milliseconds: 10)
            }
            return true
        }
    }

    func pass() {
        lock.withLock {
            state.withLock { $0.arrived += 1 }
            lock.broadcast()
            while !state.withLock({ $0.open }) { lock.wait(milliseconds: 50) }
        }
    }
}
