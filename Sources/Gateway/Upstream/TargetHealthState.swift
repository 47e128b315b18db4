/// Passive ejection of one target from real traffic: a pure state machine on a clock given to it.
/// `consecutiveFailures` failures in a row (connect errors, resets, 502/503/504) eject the target
/// for `ejectSeconds`, doubled on each ejection that follows another without a success between,
/// up to 300 s.
struct OutlierState {
    let consecutiveFailures: Int
    let ejectSeconds: Double
    private(set) var failuresInARow = 0
    private(set) var ejectionsInARow = 0

    static let maximumEjectSeconds: Double = 300

    init(_ settings: GatewayConfig.Upstream.Outlier) {
        consecutiveFailures = settings.consecutiveFailures
        ejectSeconds = settings.ejectSeconds
    }

    /// A failure; returns how long the target is ejected for when this one ejects it.
    mutating func failure() -> Double? {
        failuresInARow += 1
        guard failuresInARow >= consecutiveFailures else { return nil }
        failuresInARow = 0
        let seconds = min(Self.maximumEjectSeconds, ejectSeconds * Double(1 << min(ejectionsInARow, 16)))
        ejectionsInARow += 1
        return seconds
    }

    mutating func success() {
        failuresInARow = 0
        ejectionsInARow = 0
    }
}

/// Active checks of one target: `unhealthyThreshold` failed checks in a row take it out,
/// `healthyThreshold` passed ones in a row bring it back. Targets start healthy.
struct ActiveHealthState {
    let unhealthyThreshold: Int
    let healthyThreshold: Int
    private(set) var healthy = true
    private var streak = 0

    init(_ settings: GatewayConfig.Upstream.HealthCheck) {
        unhealthyThreshold = settings.unhealthyThreshold
        healthyThreshold = settings.healthyThreshold
    }

    /// Records one check; returns the new verdict when it changes.
    mutating func record(passed: Bool) -> Bool? {
        if passed == healthy {
            streak = 0
            return nil
        }
        streak += 1
        guard streak >= (healthy ? unhealthyThreshold : healthyThreshold) else { return nil }
        streak = 0
        healthy = passed
        return healthy
    }
}
