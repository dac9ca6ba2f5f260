import NinePTransport
import Synchronization

/// A thread whose end can be awaited with a bound (DaemonThread's threads are detached).
final class BackgroundThread: Sendable {
    /// A class of its own so that the thread can hold it before `self` exists.
    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    private let finished = Flag()

    init(name: String, _ body: @escaping @Sendable () -> Void) {
        let finished = self.finished
        DaemonThread.start(name: name, stackSize: 1 << 20) {
            body()
            finished.value.store(true, ordering: .releasing)
        }
    }

    var isFinished: Bool { finished.value.load(ordering: .acquiring) }

    /// True if the thread ended within `seconds`.
    func join(seconds: Double) -> Bool {
        let deadline = monotonicSeconds() + seconds
        while !isFinished {
            if monotonicSeconds() >= deadline { return false }
            sleepSeconds(0.005)
        }
        return true
    }
}
