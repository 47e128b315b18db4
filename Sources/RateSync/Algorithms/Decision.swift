/// The answer of one limiter for one request: everything the response headers need, as real
/// values computed by the algorithm (never constants).
public struct Decision: Sendable, Equatable {
    public var allowed: Bool
    /// The budget: bucket capacity, window limit or concurrency cap.
    public var limit: Int
    /// Requests still admissible right now, after this one.
    public var remaining: Int
    /// Seconds until a retry can succeed; 0 when allowed.
    public var retryAfter: Double
    /// Seconds until the budget is full again.
    public var resetAfter: Double
    /// The store's clock at the decision, in Unix seconds (Redis's own TIME on Redis).
    public var now: Double
    /// Decided in this process at a fraction of the limit while the shared store was out of
    /// reach (`on_failure = "local"`).
    public var decidedLocally = false
    /// The lease of the `max_concurrent` slot this admission took in a shared store, to renew
    /// while the request lasts and to name when giving the slot back; nil otherwise.
    public var lease: String?
    /// Seconds the request waits before it is forwarded: its limiter had no room now, but a
    /// slot within its `timeout`, which the store reserved for it. 0 for an admission now.
    public var delay: Double = 0
    /// What names the reservation a waiting admission holds, so that the store can take it back
    /// if the client leaves before its time (the store's own token); nil otherwise.
    public var reservation: String?

    public init(allowed: Bool, limit: Int, remaining: Int, retryAfter: Double, resetAfter: Double, now: Double) {
        self.allowed = allowed
        self.limit = limit
        self.remaining = remaining
        self.retryAfter = retryAfter
        self.resetAfter = resetAfter
        self.now = now
    }

    /// Of several limiters' decisions, where the one the headers describe is (so a caller can find
    /// what it belongs to): a denial (the longest wait first, the tighter limit between equal
    /// waits), otherwise the one with the fewest requests left.
    public static func indexClosestToDenying(_ decisions: [Decision]) -> Int? {
        decisions.indices.min { lhs, rhs in
            let (lhs, rhs) = (decisions[lhs], decisions[rhs])
            if lhs.allowed != rhs.allowed { return !lhs.allowed }
            if !lhs.allowed {
                // Waits compared as the client is told them, in whole seconds: two stores' clocks
                // differ by a little, which must not decide between equal waits at random.
                let (lhsWait, rhsWait) = (RateLimitHeaders.retryAfterSeconds(lhs), RateLimitHeaders.retryAfterSeconds(rhs))
                if lhsWait != rhsWait { return lhsWait > rhsWait }
                return lhs.limit < rhs.limit
            }
            if lhs.remaining != rhs.remaining { return lhs.remaining < rhs.remaining }
            return lhs.resetAfter > rhs.resetAfter
        }
    }
}

/// Comparisons of float seconds tolerate rounding noise far below a microsecond.
let timeEpsilon = 1e-9
