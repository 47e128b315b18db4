import Atomics

/// The bound on requests of this process waiting for a slot of a limiter with a `timeout`
/// (`[server] max_waiting`). A place is taken before the store is asked, so that a request with
/// no place is never given a reservation it could not wait for; it is given up as soon as the
/// request goes through, is answered, or its client leaves.
///
/// Shared by every event loop, but touched only by requests to routes whose limiters wait.
public final class WaitingRoom: Sendable {
    public let capacity: Int
    private let occupied = ManagedAtomic<Int>(0)

    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// Takes a place; false when all are taken.
    public func enter() -> Bool {
        var current = occupied.load(ordering: .relaxed)
        while current < capacity {
            let (exchanged, original) = occupied.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    public func leave() {
        occupied.wrappingDecrement(ordering: .relaxed)
    }

    /// Places taken now.
    public var waiting: Int { occupied.load(ordering: .relaxed) }
}
