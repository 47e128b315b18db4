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
            ("RateLimit-Policy", structuredItem(limiter.id, UInt8(ascii: "q"), decision.limit, UInt8(ascii: "w"), policyWindowSeconds(limiter))),
            ("RateLimit", structuredItem(limiter.id, UInt8(ascii: "r"), decision.remaining, UInt8(ascii: "t"), resetSeconds)),
        ]
        if !decision.allowed {
            headers.append(("Retry-After", String(retryAfterSeconds(decision))))
        }
        return headers
    }

    /// `"<policy>";<key>=<value>;<key>=<value>`, its bytes written once into the String's own
    /// storage (appending piece by piece, or interpolating, costs several times more per request).
    private static func structuredItem(_ policy: String, _ firstKey: UInt8, _ first: Int, _ secondKey: UInt8, _ second: Int) -> String {
        let capacity = policy.utf8.count + 2 * 22 + 6
        return String(unsafeUninitializedCapacity: capacity) { out in
            var count = 0
            func append(_ byte: UInt8) {
                out[count] = byte
                count += 1
            }
            func append(_ value: Int) {
                if value < 0 { append(UInt8(ascii: "-")) }
                var magnitude = value.magnitude
                var divisor: UInt = 1
                while magnitude / divisor >= 10 { divisor *= 10 }
                while divisor > 0 {
                    append(UInt8(ascii: "0") + UInt8(magnitude / divisor))
                    magnitude %= divisor
                    divisor /= 10
                }
            }
            append(UInt8(ascii: "\""))
            for byte in policy.utf8 { append(byte) }
            append(UInt8(ascii: "\""))
            append(UInt8(ascii: ";"))
            append(firstKey)
            append(UInt8(ascii: "="))
            append(first)
            append(UInt8(ascii: ";"))
            append(secondKey)
            append(UInt8(ascii: "="))
            append(second)
            return count
        }
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
