import NIOCore

/// Decides in this process, at a fraction of each limit, while a shared store is out of reach
/// (`on_failure = "local"`): with `divisor` gateways each admitting limit/divisor, the fleet as
/// a whole admits roughly the real limit, where a fail policy would admit everyone or no one.
public final class LocalFallback: Sendable {
    public let divisor: Int
    private let memory: MemoryStore

    public init(storeID: String, divisor: Int, clock: any WallClock = SystemWallClock()) {
        self.divisor = divisor
        self.memory = MemoryStore(id: storeID, clock: clock)
    }

    /// Every check against its limiter divided by `divisor`, all or nothing as the store would.
    public func decide(_ checks: [LimitCheck]) -> [Decision] {
        memory.decide(checks.map(scaled)).map { decision in
            var local = decision
            local.decidedLocally = true
            return local
        }
    }

    public func release(_ checks: [LimitCheck]) {
        memory.release(checks.map(scaled))
    }

    private func scaled(_ check: LimitCheck) -> LimitCheck {
        LimitCheck(limiter: Self.scale(check.limiter, by: divisor), key: check.key, cost: check.cost, shadow: check.shadow)
    }

    /// The limiter one of `divisor` gateways enforces: rates, limits, bursts and concurrency caps
    /// divided, never below one request.
    public static func scale(_ limiter: LimiterConfig, by divisor: Int) -> LimiterConfig {
        guard divisor > 1 else { return limiter }
        var scaled = limiter
        switch limiter.algorithm {
        case .tokenBucket(let rule?):
            scaled.algorithm = .tokenBucket(
                TokenBucketRule(ratePerSecond: rule.ratePerSecond / Double(divisor), burst: max(1, rule.burst / divisor))
            )
        case .tokenBucket(nil):
            break
        case .slidingWindow(let rule):
            scaled.algorithm = .slidingWindow(
                SlidingWindowRule(limit: max(1, rule.limit / divisor), windowSeconds: rule.windowSeconds)
            )
        }
        scaled.maxConcurrent = limiter.maxConcurrent.map { max(1, $0 / divisor) }
        return scaled
    }
}
