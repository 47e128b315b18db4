/// The rate-limit response headers for one decision: the classic `X-RateLimit-*` trio,
/// `Retry-After` on denials, and the IETF httpapi draft's structured `RateLimit-Policy` and
/// `RateLimit` fields (`"<policy>";q=<quota>;w=<window>` and `"<policy>";r=<remaining>;t=<reset>`).
public enum RateLimitHeaders {
    /// Whole seconds a client should wait; at least 1 so that "retry now" is never announced.
    public static func retryAfterSeconds(_ decision: Decision) -> Int {
        max(1, Int(decision.retryAfter.rounded(.up)))
    }

    public static func render(_ decision: Decision, limiter: LimiterConfig) -> [(String, String)] {
        let resetSeconds = max(0, Int(decision.resetAfter.rounded(.up)))
        let resetAt = Int((decision.now + decision.resetAfter).rounded(.up))
        var headers: [(String, String)] = [
            ("X-RateLimit-Limit", String(decision.limit)),
            ("X-RateLimit-Remaining", String(decision.remaining)),
            ("X-RateLimit-Reset", String(resetAt)),
            ("RateLimit-Policy", "\"\(limiter.id)\";q=\(decision.limit);w=\(policyWindowSeconds(limiter))"),
            ("RateLimit", "\"\(limiter.id)\";r=\(decision.remaining);t=\(resetSeconds)"),
        ]
        if !decision.allowed {
            headers.append(("Retry-After", String(retryAfterSeconds(decision))))
        }
        return headers
    }

    /// The policy's window: the sliding window itself, or the time a token bucket takes to
    /// refill completely (`burst / rate`), in whole seconds, at least 1.
    static func policyWindowSeconds(_ limiter: LimiterConfig) -> Int {
        let seconds: Double
        switch limiter.algorithm {
        case .slidingWindow(let rule): seconds = rule.windowSeconds
        case .tokenBucket(let rule?): seconds = Double(rule.burst) / rule.ratePerSecond
        case .tokenBucket(nil): seconds = 1
        }
        return max(1, Int(seconds.rounded(.up)))
    }
}
