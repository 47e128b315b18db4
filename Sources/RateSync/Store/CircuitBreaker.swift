/// The circuit breaker of one store, as a pure state machine on an injected clock.
///
/// Closed: requests use the store; `threshold` consecutive failures open it. Open: no request
/// touches the store until `timeout` seconds have passed; then it is half-open and lets exactly
/// one probe through at a time: success closes it, failure opens it again.
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case closed(consecutiveFailures: Int)
        case open(until: Double)
        case halfOpen(probeInFlight: Bool)

        public var name: String {
            switch self {
            case .closed: return "closed"
            case .open: return "open"
            case .halfOpen: return "half_open"
            }
        }
    }

    /// What a request may do.
    public enum Admission: Sendable, Equatable {
        case use
        /// The one request of a half-open breaker that tests the store.
        case probe
        /// Open: answer with the fail policy, at once. `retryAfter` is the time left open.
        case reject(retryAfter: Double)
    }

    public struct Transition: Sendable, Equatable {
        public let from: String
        public let to: String
        public let reason: String
    }

    public let threshold: Int
    public let timeout: Double
    public private(set) var state: State = .closed(consecutiveFailures: 0)

    public init(threshold: Int, timeout: Double) {
        self.threshold = threshold
        self.timeout = timeout
    }

    public mutating func admit(now: Double) -> (Admission, Transition?) {
        switch state {
        case .closed:
            return (.use, nil)
        case .open(let until):
            guard now >= until else { return (.reject(retryAfter: until - now), nil) }
            state = .halfOpen(probeInFlight: true)
            return (.probe, Transition(from: "open", to: "half_open", reason: "open for \(timeout) s: probing"))
        case .halfOpen(let probeInFlight):
            if probeInFlight { return (.reject(retryAfter: 1), nil) }
            state = .halfOpen(probeInFlight: true)
            return (.probe, nil)
        }
    }

    public mutating func recordSuccess() -> Transition? {
        switch state {
        case .closed:
            state = .closed(consecutiveFailures: 0)
            return nil
        case .halfOpen:
            state = .closed(consecutiveFailures: 0)
            return Transition(from: "half_open", to: "closed", reason: "probe succeeded")
        case .open:
            // A call admitted before the breaker opened came back well: not evidence enough.
            return nil
        }
    }

    public mutating func recordFailure(now: Double, reason: String) -> Transition? {
        switch state {
        case .closed(let failures):
            if failures + 1 >= threshold {
                state = .open(until: now + timeout)
                return Transition(from: "closed", to: "open", reason: "\(failures + 1) consecutive failures, last: \(reason)")
            }
            state = .closed(consecutiveFailures: failures + 1)
            return nil
        case .halfOpen:
            state = .open(until: now + timeout)
            return Transition(from: "half_open", to: "open", reason: "probe failed: \(reason)")
        case .open:
            return nil
        }
    }

    /// Opens at once (a degraded start): the first probe goes through after `timeout`.
    public mutating func forceOpen(now: Double, reason: String) -> Transition? {
        let from = state.name
        state = .open(until: now + timeout)
        return from == "open" ? nil : Transition(from: from, to: "open", reason: reason)
    }
}
