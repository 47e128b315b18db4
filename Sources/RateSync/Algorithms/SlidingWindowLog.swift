import NIOCore

/// The exact sliding window: a log of the times of admitted requests. A request is admitted when
/// fewer than `limit` admissions fall in the last `windowSeconds`, so no interval of that length
/// ever holds more than `limit` admissions. Entries at or before `now - window` have left the
/// window, as in rate-sync's `ZREMRANGEBYSCORE key -inf now-window`.
public enum SlidingWindowLog {
    /// Decides for a log of admission times in ascending order, pruning expired entries and
    /// appending `now` once per unit of `cost` when admitted.
    public static func evaluate(
        log: inout CircularBuffer<Double>,
        now: Double,
        rule: SlidingWindowRule,
        cost: Int = 1
    ) -> Decision {
        let windowStart = now - rule.windowSeconds
        while let oldest = log.first, oldest <= windowStart {
            log.removeFirst()
        }
        if log.count + cost <= rule.limit {
            for _ in 0..<cost { log.append(now) }
            return Decision(
                allowed: true,
                limit: rule.limit,
                remaining: rule.limit - log.count,
                retryAfter: 0,
                resetAfter: rule.windowSeconds,
                now: now
            )
        }
        // Full: a retry succeeds once enough of the oldest admissions have left the window for
        // `cost` more to fit (a cost above the limit never fits; a whole window is the honest wait).
        let mustLeave = log.count + cost - rule.limit
        let freedBy = cost <= rule.limit && mustLeave <= log.count ? log[log.index(log.startIndex, offsetBy: mustLeave - 1)] : now
        let newest = log.last ?? now
        return Decision(
            allowed: false,
            limit: rule.limit,
            remaining: 0,
            retryAfter: max(0, freedBy + rule.windowSeconds - now),
            resetAfter: max(0, newest + rule.windowSeconds - now),
            now: now
        )
    }
}
