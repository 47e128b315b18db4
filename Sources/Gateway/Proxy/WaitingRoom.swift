/// The bound on requests of this process waiting for a slot of a limiter with a `timeout`
/// (`[server] max_waiting`). A place is taken before the store is asked, so that a request with
/// no place is never given a reservation it could not wait for; it is given up as soon as the
/// request goes through, is answered, or its client leaves.
///
/// Shared by every event loop, but touched only by requests to routes whose limiters wait.
public final class WaitingRoom: Sendable {
    private let places: BoundedCounter

    public init(capacity: Int) {
        places = BoundedCounter(bound: capacity)
    }

    /// Takes a place; false when all are taken.
    public func enter() -> Bool { places.take() }

    public func leave() { places.giveBack() }

    /// Places taken now.
    public var waiting: Int { places.taken }
}
