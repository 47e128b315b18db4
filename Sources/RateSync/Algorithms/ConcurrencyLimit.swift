/// `max_concurrent`: at most `limit` requests of one key in flight. A slot is taken when the
/// request is admitted and given back when its response ends.
public enum ConcurrencyLimit {
    public static func evaluate(inFlight: Int, limit: Int, now: Double) -> Decision {
        if inFlight < limit {
            return Decision(
                allowed: true,
                limit: limit,
                remaining: limit - inFlight - 1,
                retryAfter: 0,
                resetAfter: 0,
                now: now
            )
        }
        // When a slot frees up is unknowable; one second is the smallest honest Retry-After.
        return Decision(allowed: false, limit: limit, remaining: 0, retryAfter: 1, resetAfter: 1, now: now)
    }
}
