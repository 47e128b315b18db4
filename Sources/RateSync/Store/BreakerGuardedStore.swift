import NIOConcurrencyHelpers
import NIOCore

/// Puts a circuit breaker in front of a store: while it is open no request touches the store,
/// and each limiter's fail policy answers at once, or, with a `LocalFallback`, limits divided
/// among the gateways decide in process. The store itself knows nothing of it.
public final class BreakerGuardedStore: RateLimitStore {
    public let inner: any RateLimitStore
    public var id: String { inner.id }
    public var engineName: String { inner.engineName }

    private let breaker: NIOLockedValueBox<CircuitBreaker>
    private let clock: any WallClock
    private let onTransition: @Sendable (String, CircuitBreaker.Transition) -> Void
    public let localFallback: LocalFallback?

    /// - Parameters:
    ///   - localFallback: decides while the breaker rejects; nil leaves it to the fail policies.
    ///   - onTransition: told of every state change (for one log line each).
    public init(
        wrapping inner: any RateLimitStore,
        threshold: Int,
        timeout: Double,
        clock: any WallClock = SystemWallClock(),
        localFallback: LocalFallback? = nil,
        onTransition: @escaping @Sendable (String, CircuitBreaker.Transition) -> Void = { _, _ in }
    ) {
        self.inner = inner
        self.localFallback = localFallback
        self.breaker = NIOLockedValueBox(CircuitBreaker(threshold: threshold, timeout: timeout))
        self.clock = clock
        self.onTransition = onTransition
    }

    public var state: CircuitBreaker.State { breaker.withLockedValue { $0.state } }

    public func check(_ checks: [LimitCheck], on eventLoop: any EventLoop) -> EventLoopFuture<[Decision]> {
        let now = clock.now()
        let (admission, transition) = breaker.withLockedValue { $0.admit(now: now) }
        report(transition)
        if case .reject(let retryAfter) = admission {
            if let localFallback {
                return eventLoop.makeSucceededFuture(localFallback.decide(checks))
            }
            return eventLoop.makeFailedFuture(
                StoreFailure(storeID: id, reason: "circuit breaker open", retryAfter: retryAfter)
            )
        }
        let future = inner.check(checks, on: eventLoop)
        future.whenComplete { result in
            let transition: CircuitBreaker.Transition?
            switch result {
            case .success:
                transition = self.breaker.withLockedValue { $0.recordSuccess() }
            case .failure(let error as StoreFailure) where !error.affectsHealth:
                transition = self.breaker.withLockedValue { $0.recordSuccess() }
            case .failure(let error):
                // The clock is read only here: a success, every request's case, needs no time.
                let now = self.clock.now()
                transition = self.breaker.withLockedValue { $0.recordFailure(now: now, reason: "\(error)") }
            }
            self.report(transition)
        }
        return future
    }

    public func release(_ checks: [LimitCheck]) {
        inner.release(checks)
    }

    public func giveBack(_ checks: [LimitCheck]) {
        inner.giveBack(checks)
    }

    public func releaseDecidedLocally(_ checks: [LimitCheck]) {
        localFallback?.release(checks)
    }

    /// The health probe goes straight to the store: it reports what the store is, not what the
    /// breaker assumes.
    public func probe(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        inner.probe(on: eventLoop)
    }

    public var breakerStateName: String { state.name }
    public var openConnections: Int { inner.openConnections }
    public var currentPrimary: String? { inner.currentPrimary }
    public var nodeBreakers: [String: String]? { inner.nodeBreakers }

    public func forceOpen(reason: String) {
        let now = clock.now()
        report(breaker.withLockedValue { $0.forceOpen(now: now, reason: reason) })
    }

    private func report(_ transition: CircuitBreaker.Transition?) {
        if let transition { onTransition(id, transition) }
    }
}
