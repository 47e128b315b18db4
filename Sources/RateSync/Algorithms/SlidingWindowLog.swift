import NIOCore

/// The exact sliding window: a log of the times of admitted requests. A request is admitted when
/// fewer than `limit` admissions fall in the last `windowSeconds`, so no interval of that length
/// ever holds more than `limit` admissions. Entries at or before `now - window` have left the
/// window, as in rate-sync's `ZREMRANGEBYSCORE key -inf now-window`.
///
/// A waiting admission (`maxWait`) is logged at its future time: the log may hold entries ahead
/// of now, which count as used until they have left the window.
public enum SlidingWindowLog {
    /// Decides for a log of admission times in ascending order, pruning expired entries and
    /// logging the admission (`cost` entries at now, or at now + delay for a waiting one).
    public static func evaluate(
        log: inout CircularBuffer<Double>,
        now: Double,
        rule: SlidingWindowRule,
        cost: Int = 1,
        maxWait: Double = 0
    ) -> Decision {
        let decision = decide(log: &log, now: now, rule: rule, cost: cost, maxWait: maxWait)
        if decision.allowed { record(in: &log, at: now + decision.delay, cost: cost) }
        return decision
    }

    /// Prunes the log and decides, without logging the admission.
    public static func decide(
        log: inout CircularBuffer<Double>,
        now: Double,
        rule: SlidingWindowRule,
        cost: Int = 1,
        maxWait: Double = 0
    ) -> Decision {
        let windowStart = now - rule.windowSeconds
        while let oldest = log.first, oldest <= windowStart {
            log.removeFirst()
        }
        if log.count + cost <= rule.limit {
            return Decision(
                allowed: true,
                limit: rule.limit,
                remaining: rule.limit - log.count - cost,
                retryAfter: 0,
                resetAfter: rule.windowSeconds,
                now: now
            )
        }
        // Full: a retry succeeds once enough of the oldest admissions have left the window for
        // `cost` more to fit (a cost above the limit never fits; a whole window is the honest wait).
        let mustLeave = log.count + cost - rule.limit
        let fits = cost <= rule.limit && mustLeave <= log.count
        let freedBy = fits ? log[log.index(log.startIndex, offsetBy: mustLeave - 1)] : now
        let newest = log.last ?? now
        let wait = max(0, freedBy + rule.windowSeconds - now)
        if fits && wait <= maxWait {
            var decision = Decision(
                allowed: true,
                limit: rule.limit,
                remaining: 0,
                retryAfter: 0,
                resetAfter: max(wait, newest - now) + rule.windowSeconds,
                now: now
            )
            decision.delay = wait
            return decision
        }
        return Decision(
            allowed: false,
            limit: rule.limit,
            remaining: 0,
            retryAfter: wait,
            resetAfter: max(0, newest + rule.windowSeconds - now),
            now: now
        )
    }

    /// Logs `cost` admissions at `time`, keeping the log in order.
    public static func record(in log: inout CircularBuffer<Double>, at time: Double, cost: Int) {
        if log.last.map({ $0 <= time }) ?? true {
            for _ in 0..<cost { log.append(time) }
            return
        }
        // A CircularBuffer's indices do not survive a mutation: find the place by offset.
        var offset = log.count
        while offset > 0, log[log.index(log.startIndex, offsetBy: offset - 1)] > time {
            offset -= 1
        }
        for _ in 0..<cost { log.insert(time, at: log.index(log.startIndex, offsetBy: offset)) }
    }

    /// Removes `cost` admissions logged at `time` (a waiting admission given back).
    public static func remove(from log: inout CircularBuffer<Double>, at time: Double, cost: Int) {
        for _ in 0..<cost {
            guard let index = log.lastIndex(of: time) else { return }
            log.remove(at: index)
        }
    }
}
