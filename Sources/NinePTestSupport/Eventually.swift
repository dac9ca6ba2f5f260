/// Polls `condition` until it holds, at most `limit`, with Task.sleep between looks: an async
/// test that blocked its thread instead would hold one of the cooperative pool's few threads
/// (two here) that other tests' tasks need. Returns whether it held.
public func eventually(_ limit: Duration = .seconds(3), every pause: Duration = .milliseconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: pause)
    }
    return condition()
}
