/// The token bucket in its GCRA form: one number per key, the theoretical arrival time (TAT) of
/// the next request at the sustained rate. A request is admitted when admitting it would not push
/// the TAT more than `burst` emission intervals past now.
public enum GCRA {
    public struct Outcome: Sendable, Equatable {
        public var decision: Decision
        /// The TAT to store when the request is admitted; nil when denied (state unchanged).
        public var newTAT: Double?
    }

    /// - Parameters:
    ///   - storedTAT: the key's TAT, or nil for a key never seen or expired.
    ///   - now: the store's clock, Unix seconds.
    ///   - cost: tokens the request takes; the TAT moves `cost` intervals.
    ///   - maxWait: a request whose tokens come within this many seconds is admitted for then
    ///     (its decision's `delay`), the TAT moving as if it had arrived on time.
    public static func evaluate(
        storedTAT: Double?,
        now: Double,
        rule: TokenBucketRule,
        cost: Int = 1,
        maxWait: Double = 0
    ) -> Outcome {
        let interval = rule.emissionInterval
        let capacity = Double(rule.burst) * interval
        let tat = max(storedTAT ?? now, now)
        let newTAT = tat + Double(cost) * interval
        let allowAt = newTAT - capacity
        let wait = allowAt - now
        if wait > timeEpsilon {
            guard wait <= maxWait, cost <= rule.burst else {
                let decision = Decision(
                    allowed: false,
                    limit: rule.burst,
                    remaining: 0,
                    retryAfter: wait,
                    resetAfter: tat - now,
                    now: now
                )
                return Outcome(decision: decision, newTAT: nil)
            }
            var decision = Decision(allowed: true, limit: rule.burst, remaining: 0, retryAfter: 0, resetAfter: newTAT - now, now: now)
            decision.delay = wait
            return Outcome(decision: decision, newTAT: newTAT)
        }
        let remaining = Int(((now - allowAt) / interval + timeEpsilon).rounded(.down))
        let decision = Decision(
            allowed: true,
            limit: rule.burst,
            remaining: min(rule.burst - cost, max(0, remaining)),
            retryAfter: 0,
            resetAfter: newTAT - now,
            now: now
        )
        return Outcome(decision: decision, newTAT: newTAT)
    }

    /// The TAT to store when the request goes through `delay` seconds from `now` (a group of
    /// limiters waits for its slowest one): no earlier than the request's own arrival.
    public static func tat(_ newTAT: Double, admittedAfter delay: Double, now: Double, rule: TokenBucketRule, cost: Int) -> Double {
        max(newTAT, now + delay + Double(cost) * rule.emissionInterval)
    }
}
