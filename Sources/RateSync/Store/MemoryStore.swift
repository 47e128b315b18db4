import NIOConcurrencyHelpers
import NIOCore

/// Limiter state in this process's memory: exact for one gateway, shared by all its event loops.
///
/// Memory stays bounded: a key whose state has expired (a full bucket, an empty window) is the
/// same as a key never seen, so sweeps drop it; and beyond `maxKeys` live keys the ones closest
/// to expiring are dropped first, which can only make a limit more lenient, never stricter.
public final class MemoryStore: RateLimitStore {
    public let id: String
    public var engineName: String { "memory" }

    private let clock: any WallClock
    private let maxKeys: Int
    private let table: NIOLockedValueBox<KeyTable>

    public init(id: String, clock: any WallClock = SystemWallClock(), maxKeys: Int = 1_000_000) {
        self.id = id
        self.clock = clock
        self.maxKeys = maxKeys
        self.table = NIOLockedValueBox(KeyTable())
    }

    /// How many keys hold state now (for tests and metrics).
    public var keyCount: Int { table.withLockedValue { $0.entries.count } }

    public func check(_ checks: [LimitCheck], on eventLoop: any EventLoop) -> EventLoopFuture<[Decision]> {
        eventLoop.makeSucceededFuture(decide(checks))
    }

    public var decidesInProcess: Bool { true }

    public func checkImmediately(_ checks: [LimitCheck]) -> [Decision]? {
        decide(checks)
    }

    public func checkImmediately(_ check: LimitCheck) -> Decision? {
        deciding { table, now in table.decide(check, now: now) }
    }

    /// The synchronous core of `check`.
    public func decide(_ checks: [LimitCheck]) -> [Decision] {
        deciding { table, now in table.decide(checks, now: now) }
    }

    /// A decision on the table at this instant, under its lock, then a sweep if one is due.
    @inline(__always)
    private func deciding<Result>(_ decide: (inout KeyTable, Double) -> Result) -> Result {
        let now = clock.now()
        let maxKeys = self.maxKeys
        return table.withLockedValue { table in
            let result = decide(&table, now)
            table.sweepIfDue(now: now, maxKeys: maxKeys)
            return result
        }
    }

    public func release(_ checks: [LimitCheck]) {
        table.withLockedValue { table in
            for check in checks where check.limiter.maxConcurrent != nil {
                table.releaseSlot(KeyTable.concurrencyKey(check.key))
            }
        }
    }

    public func giveBack(_ checks: [LimitCheck]) {
        table.withLockedValue { table in
            for check in checks { table.giveBack(check) }
        }
    }

    public func probe(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        eventLoop.makeSucceededVoidFuture()
    }
}

/// The key-value state behind `MemoryStore`, only ever touched under its lock.
struct KeyTable {
    enum State {
        case bucket(tat: Double)
        case window(CircularBuffer<Double>)
        case inFlight(Int)
    }

    struct Entry {
        var state: State
        /// After this instant the entry is equivalent to no entry at all.
        var expiresAt: Double
    }

    private static let firstSweepSize = 4096

    var entries: [String: Entry] = [:]
    private var sweepAtCount = KeyTable.firstSweepSize
    /// The updates of the group being decided: kept between calls (emptied, its room kept) so
    /// that a decision allocates no array of its own.
    private var updates: [Update] = []

    static func concurrencyKey(_ key: String) -> String { key + ":concurrent" }

    /// A state change one check asks for, made only when its group admits; rate updates wait
    /// for the group's delay (the slowest waiting check's), at which the request goes through.
    private enum Update {
        case bucket(key: String, newTAT: Double, rule: TokenBucketRule, cost: Int)
        case window(key: String, log: CircularBuffer<Double>, windowSeconds: Double, cost: Int)
        case slot(key: String, inFlight: Int)
    }

    /// Evaluates every check against the current state and commits the new state only when all
    /// of them admit; a shadow check never blocks the others, and commits its own state only
    /// when it admits too. When some check admits only after a wait, every check of the group
    /// is committed at that later time, and each decision carries it as its `delay`.
    mutating func decide(_ checks: [LimitCheck], now: Double) -> [Decision] {
        var updates = takeUpdates()
        defer { keep(&updates) }
        var decisions: [Decision] = []
        decisions.reserveCapacity(checks.count)
        var allAdmitted = true
        var delay = 0.0
        for check in checks {
            let mark = updates.count
            let decision = evaluate(check, now: now, updates: &updates)
            if !decision.allowed {
                // A denied check commits nothing of its own (a rate update whose slot was refused).
                updates.removeSubrange(mark...)
                if !check.shadow { allAdmitted = false }
            } else if !check.shadow {
                delay = max(delay, decision.delay)
            }
            decisions.append(decision)
        }
        guard allAdmitted else {
            for index in decisions.indices { decisions[index].delay = 0 }
            return decisions
        }
        commit(updates, delay: delay, now: now)
        if delay > 0 {
            for index in decisions.indices where decisions[index].allowed {
                decisions[index].delay = delay
                decisions[index].reservation = String(now + delay)
            }
        }
        return decisions
    }

    /// `decide` for a group of one check (the common route: one limiter), without the arrays.
    mutating func decide(_ check: LimitCheck, now: Double) -> Decision {
        if case .tokenBucket(let rule?) = check.limiter.algorithm, check.limiter.maxConcurrent == nil {
            return decideBucket(check, rule: rule, now: now)
        }
        var updates = takeUpdates()
        defer { keep(&updates) }
        var decision = evaluate(check, now: now, updates: &updates)
        guard decision.allowed else {
            if !check.shadow { decision.delay = 0 }
            return decision
        }
        let delay = check.shadow ? 0 : decision.delay
        commit(updates, delay: delay, now: now)
        if delay > 0 { decision.reservation = String(now + delay) }
        return decision
    }

    /// `decide` for a token bucket without a concurrency cap (most limiters): its entry is found
    /// once and, when the check admits, replaced where it lies (evaluating, then committing,
    /// hashed the key twice).
    private mutating func decideBucket(_ check: LimitCheck, rule: TokenBucketRule, now: Double) -> Decision {
        let index = entries.index(forKey: check.key)
        var stored: Double?
        if let index, case .bucket(let tat) = entries.values[index].state { stored = tat }
        let outcome = GCRA.evaluate(storedTAT: stored, now: now, rule: rule, cost: check.cost, maxWait: check.shadow ? 0 : check.maxWait)
        var decision = outcome.decision
        guard decision.allowed else {
            if !check.shadow { decision.delay = 0 }
            return decision
        }
        let delay = check.shadow ? 0 : decision.delay
        if let newTAT = outcome.newTAT {
            let tat = GCRA.tat(newTAT, admittedAfter: delay, now: now, rule: rule, cost: check.cost)
            let entry = Entry(state: .bucket(tat: tat), expiresAt: tat)
            if let index { entries.values[index] = entry } else { entries[check.key] = entry }
        }
        if delay > 0 { decision.reservation = String(now + delay) }
        return decision
    }

    /// The admitted group's state, at the time its slowest waiting check goes through.
    private mutating func commit(_ updates: [Update], delay: Double, now: Double) {
        for update in updates {
            switch update {
            case .bucket(let key, let newTAT, let rule, let cost):
                let tat = GCRA.tat(newTAT, admittedAfter: delay, now: now, rule: rule, cost: cost)
                entries[key] = Entry(state: .bucket(tat: tat), expiresAt: tat)
            case .window(let key, var log, let windowSeconds, let cost):
                SlidingWindowLog.record(in: &log, at: now + delay, cost: cost)
                entries[key] = Entry(state: .window(log), expiresAt: (log.last ?? now) + windowSeconds)
            case .slot(let key, let inFlight):
                entries[key] = Entry(state: .inFlight(inFlight), expiresAt: .infinity)
            }
        }
    }

    /// The kept updates array, empty, for one decision (its room is reused: a decision then
    /// allocates no array of its own); handed back with `keep`.
    private mutating func takeUpdates() -> [Update] {
        let updates = self.updates
        self.updates = []
        return updates
    }

    private mutating func keep(_ updates: inout [Update]) {
        updates.removeAll(keepingCapacity: true)
        self.updates = updates
    }

    private func evaluate(_ check: LimitCheck, now: Double, updates: inout [Update]) -> Decision {
        var rateDecision: Decision?
        let maxWait = check.shadow ? 0 : check.maxWait
        switch check.limiter.algorithm {
        case .tokenBucket(let rule?):
            let stored: Double?
            if case .bucket(let tat)? = entries[check.key]?.state { stored = tat } else { stored = nil }
            let outcome = GCRA.evaluate(storedTAT: stored, now: now, rule: rule, cost: check.cost, maxWait: maxWait)
            if let newTAT = outcome.newTAT {
                updates.append(.bucket(key: check.key, newTAT: newTAT, rule: rule, cost: check.cost))
            }
            rateDecision = outcome.decision
        case .tokenBucket(nil):
            rateDecision = nil
        case .slidingWindow(let rule):
            var log: CircularBuffer<Double>
            if case .window(let stored)? = entries[check.key]?.state { log = stored } else { log = [] }
            let decision = SlidingWindowLog.decide(log: &log, now: now, rule: rule, cost: check.cost, maxWait: maxWait)
            if decision.allowed {
                updates.append(.window(key: check.key, log: log, windowSeconds: rule.windowSeconds, cost: check.cost))
            }
            rateDecision = decision
        }
        guard let cap = check.limiter.maxConcurrent else {
            return rateDecision ?? ConcurrencyLimit.evaluate(inFlight: 0, limit: Int.max, now: now)
        }
        let slotKey = Self.concurrencyKey(check.key)
        var inFlight = 0
        if case .inFlight(let count)? = entries[slotKey]?.state { inFlight = count }
        let slotDecision = ConcurrencyLimit.evaluate(inFlight: inFlight, limit: cap, now: now)
        guard let rateDecision else {
            if slotDecision.allowed {
                updates.append(.slot(key: slotKey, inFlight: inFlight + 1))
            }
            return slotDecision
        }
        if !slotDecision.allowed { return slotDecision }
        if rateDecision.allowed {
            updates.append(.slot(key: slotKey, inFlight: inFlight + 1))
        }
        return rateDecision
    }

    /// Undoes a waiting admission's rate update (see `RateLimitStore.giveBack`).
    mutating func giveBack(_ check: LimitCheck) {
        guard let reservation = check.reservation, let time = Double(reservation), var entry = entries[check.key] else { return }
        switch (entry.state, check.limiter.algorithm) {
        case (.bucket(let tat), .tokenBucket(let rule?)):
            entry.state = .bucket(tat: tat - Double(check.cost) * rule.emissionInterval)
        case (.window(var log), .slidingWindow):
            SlidingWindowLog.remove(from: &log, at: time, cost: check.cost)
            entry.state = .window(log)
        default:
            return
        }
        entries[check.key] = entry
    }

    mutating func releaseSlot(_ slotKey: String) {
        guard case .inFlight(let count)? = entries[slotKey]?.state else { return }
        if count <= 1 {
            entries[slotKey] = nil
        } else {
            entries[slotKey]?.state = .inFlight(count - 1)
        }
    }

    /// Drops expired keys once the table has doubled since the last sweep (amortised O(1) per
    /// request), then enforces the hard cap.
    mutating func sweepIfDue(now: Double, maxKeys: Int) {
        guard entries.count >= sweepAtCount || entries.count > maxKeys else { return }
        entries = entries.filter { $0.value.expiresAt > now }
        if entries.count > maxKeys {
            // Evict down to 90% of the cap so that the sort is paid once per tenth of the cap
            // of new keys, not on every insert.
            let excess = entries.count - maxKeys * 9 / 10
            let soonest = entries.sorted { $0.value.expiresAt < $1.value.expiresAt }.prefix(excess)
            for (key, _) in soonest { entries[key] = nil }
        }
        sweepAtCount = max(Self.firstSweepSize, entries.count * 2)
    }
}
