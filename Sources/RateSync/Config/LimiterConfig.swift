/// A `[limiters.<id>]` table of rate-sync.toml, validated.
public struct LimiterConfig: Sendable, Equatable {
    public enum Algorithm: Sendable, Equatable {
        /// GCRA; `rate` may be nil for a limiter that only caps concurrency (`max_concurrent`).
        case tokenBucket(TokenBucketRule?)
        case slidingWindow(SlidingWindowRule)

        public var name: String {
            switch self {
            case .tokenBucket: return "token_bucket"
            case .slidingWindow: return "sliding_window"
            }
        }

        /// The window's length, for a sliding window.
        public var windowSeconds: Double? {
            if case .slidingWindow(let rule) = self { return rule.windowSeconds }
            return nil
        }
    }

    public var id: String
    public var storeID: String
    public var algorithm: Algorithm
    /// At most this many requests of one identifier in flight at once.
    public var maxConcurrent: Int?
    /// rate-sync's acquire timeout: a request its rate would deny waits up to this many seconds
    /// for a slot, reserved in the store, instead of a 429 (never for a `max_concurrent` slot).
    public var timeout: Double?
    /// When the store fails: false lets the request through, true answers 503.
    public var failClosed: Bool
    /// A `max_concurrent` slot taken in a shared store is held on a lease this long, renewed
    /// while its request lasts: the slots of a gateway that dies come back when their leases
    /// run out (gateway.toml's `[limiters.<id>] lease_seconds`).
    public var leaseSeconds: Double = LimiterConfig.defaultLeaseSeconds

    public static let defaultLeaseSeconds: Double = 60

    public init(
        id: String,
        storeID: String,
        algorithm: Algorithm,
        maxConcurrent: Int? = nil,
        timeout: Double? = nil,
        failClosed: Bool = false
    ) {
        self.id = id
        self.storeID = storeID
        self.algorithm = algorithm
        self.maxConcurrent = maxConcurrent
        self.timeout = timeout
        self.failClosed = failClosed
    }

    /// The budget headers announce: the bucket's capacity, the window's limit, or the
    /// concurrency cap for a concurrency-only limiter.
    public var advertisedLimit: Int {
        switch algorithm {
        case .tokenBucket(let rule?): return rule.burst
        case .tokenBucket(nil): return maxConcurrent ?? 0
        case .slidingWindow(let rule): return rule.limit
        }
    }
}

public struct TokenBucketRule: Sendable, Equatable {
    public var ratePerSecond: Double
    /// Capacity: how many requests may arrive at once after a quiet spell.
    public var burst: Int

    public init(ratePerSecond: Double, burst: Int? = nil) {
        self.ratePerSecond = ratePerSecond
        // One second's worth by default, as Guava's RateLimiter does.
        self.burst = burst ?? max(1, Int(ratePerSecond.rounded(.down)))
    }

    /// Seconds between two admissions at the sustained rate.
    public var emissionInterval: Double { 1 / ratePerSecond }
}

public struct SlidingWindowRule: Sendable, Equatable {
    public var limit: Int
    public var windowSeconds: Double

    public init(limit: Int, windowSeconds: Double) {
        self.limit = limit
        self.windowSeconds = windowSeconds
    }
}
