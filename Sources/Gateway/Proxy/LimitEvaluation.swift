import NIOCore
import RateSync

/// What a verdict notes besides its answer, for metrics and the access log.
struct VerdictNotes {
    /// Fail-open limiters whose store could not decide.
    var failedOpen: [String] = []
    /// Shadow limiters that would have denied.
    var shadowDenied: [String] = []
    /// Some store decided in process, its backend out of reach (`on_failure = "local"`).
    var decidedLocally = false
}

/// What a route's limiters say about one request.
enum LimitVerdict {
    /// Forward (after `held.delay`); `headers` describe the enforced limiter closest to denying.
    /// No headers when no enforced limiter decided.
    case admit(headers: RateLimitHeaders?, held: Holdings, notes: VerdictNotes = VerdictNotes())
    /// 429, with the headers of `decision`.
    case deny(limiter: LimiterConfig, decision: Decision, notes: VerdictNotes = VerdictNotes())
    /// 503: a fail-closed limiter's store could not decide; `retryAfter` in whole seconds.
    case unavailable(limiter: LimiterConfig, retryAfter: Int)
}

/// What an admission holds in the stores.
struct Holdings {
    /// `max_concurrent` slots, given back when the exchange ends.
    var slots: [StoreHold] = []
    /// Seconds to wait before forwarding: a limiter with a `timeout` had no room now, and the
    /// store reserved a slot that far ahead.
    var delay: Double = 0
    /// The reservations of that wait, given back if the client leaves before its time.
    var reservations: [StoreHold] = []

    static let none = Holdings()

    /// The client left before the request was forwarded: everything goes back.
    func giveBackAll() {
        slots.forEach { $0.release() }
        reservations.forEach { $0.giveBackReservations() }
    }
}

/// What one store holds for a request, to give back later: its `max_concurrent` slots, or the
/// reservations of a waiting admission.
struct StoreHold {
    let store: any RateLimitStore
    let checks: [LimitCheck]
    /// Taken by the store's in-process fallback, which then gets them back.
    var decidedLocally = false

    func release() {
        if decidedLocally { store.releaseDecidedLocally(checks) } else { store.release(checks) }
    }

    func giveBackReservations() {
        store.giveBack(checks)
    }
}

/// Runs a route's limiters: one atomic call per store (normally a single store, so a single
/// round trip), then applies each limiter's fail policy to stores that could not answer.
enum LimitEvaluation {
    /// Asks the stores and calls `decided` with the verdict, on `eventLoop` (the caller's, which
    /// this must be called on). A callback, not a future: a future per step (timing, verdict,
    /// failure policy) cost an allocation and a callback run each, per request.
    static func evaluate(
        limiters: [GatewayRuntime.BoundLimiter],
        identifier: String,
        cost: Int,
        mayWait: Bool,
        latency: [String: LatencyHistogram],
        denials: DenialCache?,
        denialHits: [String: LoopCounter],
        counts: LoopCounts,
        on eventLoop: any EventLoop,
        decided: @escaping (LimitVerdict) -> Void
    ) {
        let groups = groupByStore(limiters, identifier: identifier, cost: cost, mayWait: mayWait)
        if let denials, let (limiter, denial) = cachedDenial(groups, denials) {
            denialHits[limiter.storeID]?.increment(in: counts)
            decided(.deny(limiter: limiter, decision: denial))
            return
        }
        let started = NIODeadline.now()
        func noted(_ group: StoreGroup, _ result: Result<[Decision], any Error>) {
            latency[group.store.id]?.record(nanoseconds: (NIODeadline.now() - started).nanoseconds, in: counts)
            if let denials, group.denialsCacheable, case .success(let decisions) = result, !decisions.allSatisfy(\.allowed) {
                let now = SystemWallClock().now()
                for (check, decision) in zip(group.checks, decisions) {
                    denials.record(decision, of: check, storeID: group.store.id, now: now)
                }
            }
        }
        if groups.count == 1, let group = groups.first {
            group.store.check(group.checks, on: eventLoop).assumeIsolated().whenComplete { result in
                noted(group, result)
                decided(verdict(outcomes: [(group, result)]))
            }
            return
        }
        let futures = groups.map { group in
            let answer = group.store.check(group.checks, on: eventLoop)
            answer.assumeIsolated().whenComplete { result in noted(group, result) }
            return answer
        }
        EventLoopFuture.whenAllComplete(futures, on: eventLoop).assumeIsolated().whenSuccess { results in
            decided(verdict(outcomes: Array(zip(groups, results))))
        }
    }

    /// The verdict without a future when every store involved answers in-process (the memory
    /// store); nil when some store needs a round trip. Nothing is consumed when it returns nil.
    static func evaluateImmediately(
        limiters: [GatewayRuntime.BoundLimiter],
        identifier: String,
        cost: Int,
        mayWait: Bool
    ) -> LimitVerdict? {
        if limiters.count == 1, let only = limiters.first, !only.shadow {
            // The common route: one limiter. No grouping, no intermediate arrays.
            let check = LimitCheck(limiter: only.config, identifier: identifier, cost: cost, maxWait: mayWait ? only.maxWait : 0)
            guard let decision = only.store.checkImmediately(check) else { return nil }
            return conclude(limiter: only.config, decision: decision, notes: VerdictNotes()) {
                only.config.maxConcurrent == nil && decision.delay == 0
                    ? .none : AdmittedGroup(group: StoreGroup(store: only.store, checks: [check]), decisions: [decision]).holdings
            }
        }
        let groups = groupByStore(limiters, identifier: identifier, cost: cost, mayWait: mayWait)
        // All or none: an in-process store asked before one that needs a round trip would have
        // spent its budget on a request that then takes the asynchronous path and asks again.
        guard groups.allSatisfy({ $0.store.decidesInProcess }) else { return nil }
        var outcomes: [(StoreGroup, Result<[Decision], any Error>)] = []
        for group in groups {
            guard let decisions = group.store.checkImmediately(group.checks) else { return nil }
            outcomes.append((group, .success(decisions)))
        }
        return verdict(outcomes: outcomes)
    }

    struct StoreGroup {
        let store: any RateLimitStore
        let checks: [LimitCheck]
        var denialsCacheable = false
    }

    /// A denial still in force for one of the enforced checks: the whole request is denied
    /// without a store call (a denied request spends nothing, so no other check matters).
    private static func cachedDenial(_ groups: [StoreGroup], _ denials: DenialCache) -> (LimiterConfig, Decision)? {
        var now: Double?
        for group in groups where group.denialsCacheable {
            for check in group.checks where !check.shadow {
                let time = now ?? SystemWallClock().now()
                now = time
                if let denial = denials.denial(of: check, storeID: group.store.id, now: time) { return (check.limiter, denial) }
            }
        }
        return nil
    }

    static func groupByStore(_ limiters: [GatewayRuntime.BoundLimiter], identifier: String, cost: Int, mayWait: Bool) -> [StoreGroup] {
        var groups: [StoreGroup] = []
        for limiter in limiters {
            let check = LimitCheck(
                limiter: limiter.config,
                identifier: identifier,
                cost: cost,
                shadow: limiter.shadow,
                maxWait: mayWait ? limiter.maxWait : 0
            )
            if let index = groups.firstIndex(where: { $0.store === limiter.store }) {
                groups[index] = StoreGroup(
                    store: groups[index].store,
                    checks: groups[index].checks + [check],
                    denialsCacheable: groups[index].denialsCacheable
                )
            } else {
                groups.append(StoreGroup(store: limiter.store, checks: [check], denialsCacheable: limiter.denialsCacheable))
            }
        }
        return groups
    }

    /// A group whose enforced checks all admitted (its shadows may not have), with its answers.
    private struct AdmittedGroup {
        let group: StoreGroup
        let decisions: [Decision]

        /// The slots the store took: every enforced check with a cap, and the shadows that
        /// admitted.
        var heldSlots: StoreHold? {
            guard group.checks.contains(where: { $0.limiter.maxConcurrent != nil }) else { return nil }
            let held = zip(group.checks, decisions).filter { check, decision in
                check.limiter.maxConcurrent != nil && (!check.shadow || decision.allowed)
            }.map { check, decision in
                var holding = check
                holding.lease = decision.lease
                return holding
            }
            guard !held.isEmpty else { return nil }
            return StoreHold(store: group.store, checks: held, decidedLocally: decisions.contains(where: \.decidedLocally))
        }

        /// The slots reserved ahead for a waiting admission.
        var reservations: StoreHold? {
            guard decisions.contains(where: { $0.reservation != nil }) else { return nil }
            let reserved = zip(group.checks, decisions).compactMap { check, decision -> LimitCheck? in
                guard decision.allowed, let reservation = decision.reservation else { return nil }
                var holding = check
                holding.reservation = reservation
                return holding
            }
            return reserved.isEmpty ? nil : StoreHold(store: group.store, checks: reserved)
        }

        var delay: Double { decisions.reduce(0) { max($0, $1.allowed ? $1.delay : 0) } }

        var holdings: Holdings {
            Holdings(slots: heldSlots.map { [$0] } ?? [], delay: delay, reservations: reservations.map { [$0] } ?? [])
        }

        func giveBack() {
            heldSlots?.release()
            reservations?.giveBackReservations()
        }
    }

    private static func holdings(_ groups: [AdmittedGroup]) -> Holdings {
        Holdings(
            slots: groups.compactMap(\.heldSlots),
            delay: groups.reduce(0) { max($0, $1.delay) },
            reservations: groups.compactMap(\.reservations)
        )
    }

    static func verdict(outcomes: [(StoreGroup, Result<[Decision], any Error>)]) -> LimitVerdict {
        var decided: [(LimiterConfig, Decision)] = []
        var admittedGroups: [AdmittedGroup] = []
        var notes = VerdictNotes()
        for (group, result) in outcomes {
            switch result {
            case .success(let decisions):
                var enforcedAdmit = true
                for (check, decision) in zip(group.checks, decisions) {
                    if decision.decidedLocally { notes.decidedLocally = true }
                    if check.shadow {
                        if !decision.allowed { notes.shadowDenied.append(check.limiter.id) }
                    } else {
                        decided.append((check.limiter, decision))
                        enforcedAdmit = enforcedAdmit && decision.allowed
                    }
                }
                if enforcedAdmit { admittedGroups.append(AdmittedGroup(group: group, decisions: decisions)) }
            case .failure(let error):
                // Fail-open limiters of this store simply drop out of the decision; a shadow
                // never denies, not even for want of a store.
                if let closed = group.checks.first(where: { $0.limiter.failClosed && !$0.shadow }) {
                    releaseSlots(admittedGroups)
                    let expectedBack = (error as? StoreFailure)?.retryAfter ?? 1
                    return .unavailable(limiter: closed.limiter, retryAfter: max(1, Int(expectedBack.rounded(.up))))
                }
                notes.failedOpen += group.checks.map(\.limiter.id)
            }
        }
        // One enforced limiter (most routes) is the one the headers describe.
        guard let index = decided.count == 1 ? 0 : Decision.indexClosestToDenying(decided.map(\.1)) else {
            return .admit(headers: nil, held: holdings(admittedGroups), notes: notes)
        }
        let (limiter, chosen) = decided[index]
        if !chosen.allowed { releaseSlots(admittedGroups) }
        return conclude(limiter: limiter, decision: chosen, notes: notes) {
            holdings(admittedGroups)
        }
    }

    /// The verdict once the limiter closest to denying is known: its headers, and a denial or an
    /// admission holding what `held` names (asked only when admitted).
    private static func conclude(
        limiter: LimiterConfig,
        decision: Decision,
        notes: VerdictNotes,
        held: () -> Holdings
    ) -> LimitVerdict {
        guard decision.allowed else { return .deny(limiter: limiter, decision: decision, notes: notes) }
        return .admit(headers: RateLimitHeaders(decision, limiter: limiter), held: held(), notes: notes)
    }

    /// The request is not forwarded after all: what the admitting stores took goes back.
    private static func releaseSlots(_ groups: [AdmittedGroup]) {
        for group in groups { group.giveBack() }
    }
}
