/// Denials a store gave, kept until their retry time so that a client hammering a limit it has
/// exhausted costs the store nothing more. Exact for a sliding window and a token bucket: other
/// admissions only ever spend budget, so nothing anywhere can make room for a request before the
/// store's own "retry after"; and a request of equal or larger cost needs at least as much room.
/// Not for `max_concurrent` limiters (a slot can come back at any moment), not for shadow checks,
/// and not for decisions made by a local fallback.
///
/// One per event loop, used only on it: no lock.
public final class DenialCache {
    private struct Entry {
        let limiter: LimiterConfig
        let cost: Int
        let limit: Int
        let deniedUntil: Double
        let fullAt: Double
    }

    /// Entries beyond this are swept (expired ones), then dropped wholesale: forgetting a denial
    /// only costs one store call.
    public static let capacity = 65_536

    private struct Key: Hashable {
        let store: String
        let check: String
    }

    private var entries: [Key: Entry] = [:]

    public init() {}

    public var count: Int { entries.count }

    /// The store's denial of `check` if one still holds at `now` (Unix seconds), with its wait
    /// and reset counted down; nil when the store must be asked.
    public func denial(of check: LimitCheck, storeID: String, now: Double) -> Decision? {
        guard let entry = entries[Self.key(check, storeID)] else { return nil }
        guard now < entry.deniedUntil, entry.limiter == check.limiter, check.cost >= entry.cost else {
            if now >= entry.deniedUntil { entries[Self.key(check, storeID)] = nil }
            return nil
        }
        return Decision(
            allowed: false,
            limit: entry.limit,
            remaining: 0,
            retryAfter: entry.deniedUntil - now,
            resetAfter: max(0, entry.fullAt - now),
            now: now
        )
    }

    /// Notes a decision the store made for `check` at `now`: a denial is kept until its retry time.
    public func record(_ decision: Decision, of check: LimitCheck, storeID: String, now: Double) {
        guard !decision.allowed, !decision.decidedLocally, !check.shadow, check.limiter.maxConcurrent == nil,
            decision.retryAfter > 0
        else { return }
        if entries.count >= Self.capacity {
            entries = entries.filter { now < $0.value.deniedUntil }
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        }
        entries[Self.key(check, storeID)] = Entry(
            limiter: check.limiter,
            cost: check.cost,
            limit: decision.limit,
            deniedUntil: now + decision.retryAfter,
            fullAt: now + decision.resetAfter
        )
    }

    private static func key(_ check: LimitCheck, _ storeID: String) -> Key {
        Key(store: storeID, check: check.key)
    }
}
