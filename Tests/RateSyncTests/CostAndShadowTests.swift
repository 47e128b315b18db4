import RateSync
import XCTest

/// Request cost and shadow checks in the in-process store, on a clock moved by hand.
final class CostAndShadowTests: XCTestCase {
    private func window(_ id: String, limit: Int, maxConcurrent: Int? = nil) -> LimiterConfig {
        LimiterConfig(id: id, storeID: "mem", algorithm: .slidingWindow(SlidingWindowRule(limit: limit, windowSeconds: 60)), maxConcurrent: maxConcurrent)
    }

    func testACostlyRequestSpendsItsCostOfAWindow() {
        let clock = ManualClock()
        let store = MemoryStore(id: "mem", clock: clock)
        let limit = window("w", limit: 10)
        let admitted = (0..<5).filter { _ in store.decide([LimitCheck(limiter: limit, identifier: "a", cost: 5)])[0].allowed }
        XCTAssertEqual(admitted.count, 2, "a limit of 10 admits 10 / 5 requests of cost 5")
        let cheap = store.decide([LimitCheck(limiter: limit, identifier: "a")])[0]
        XCTAssertFalse(cheap.allowed, "the window is full")
        XCTAssertEqual(cheap.retryAfter, 60, accuracy: 1e-6)
    }

    func testADeniedCostlyRequestWaitsForEnoughRoomNotTheFirstFreeUnit() {
        let clock = ManualClock()
        let store = MemoryStore(id: "mem", clock: clock)
        let limit = window("w", limit: 4)
        for _ in 0..<4 {
            XCTAssertTrue(store.decide([LimitCheck(limiter: limit, identifier: "a")])[0].allowed)
            clock.advance(10)
        }
        // Admissions at 0, 10, 20, 30 s; now 40 s. Three units must leave: the third (20 s) does at 80 s.
        let denied = store.decide([LimitCheck(limiter: limit, identifier: "a", cost: 3)])[0]
        XCTAssertFalse(denied.allowed)
        XCTAssertEqual(denied.retryAfter, 40, accuracy: 1e-6)
        clock.advance(40)
        XCTAssertTrue(store.decide([LimitCheck(limiter: limit, identifier: "a", cost: 3)])[0].allowed)
    }

    func testACostlyRequestTakesThatManyTokens() {
        let store = MemoryStore(id: "mem", clock: ManualClock())
        let bucket = LimiterConfig(id: "b", storeID: "mem", algorithm: .tokenBucket(TokenBucketRule(ratePerSecond: 1, burst: 10)))
        let first = store.decide([LimitCheck(limiter: bucket, identifier: "a", cost: 4)])[0]
        XCTAssertTrue(first.allowed)
        XCTAssertEqual(first.remaining, 6)
        XCTAssertTrue(store.decide([LimitCheck(limiter: bucket, identifier: "a", cost: 4)])[0].allowed)
        let third = store.decide([LimitCheck(limiter: bucket, identifier: "a", cost: 4)])[0]
        XCTAssertFalse(third.allowed, "two tokens left, four wanted")
        XCTAssertEqual(third.retryAfter, 2, accuracy: 1e-6, "two more tokens take two seconds at 1/s")
    }

    func testAConcurrencySlotIsOneWhateverTheCost() {
        let store = MemoryStore(id: "mem", clock: ManualClock())
        let capped = window("c", limit: 100, maxConcurrent: 2)
        XCTAssertTrue(store.decide([LimitCheck(limiter: capped, identifier: "a", cost: 5)])[0].allowed)
        XCTAssertTrue(store.decide([LimitCheck(limiter: capped, identifier: "a", cost: 5)])[0].allowed)
        XCTAssertFalse(store.decide([LimitCheck(limiter: capped, identifier: "a", cost: 5)])[0].allowed)
    }

    func testAShadowThatWouldDenyNeverStopsTheEnforcedOnes() {
        let store = MemoryStore(id: "mem", clock: ManualClock())
        let enforced = window("enforced", limit: 100)
        let shadow = window("shadow", limit: 2)
        var shadowDenials = 0
        for _ in 0..<5 {
            let decisions = store.decide([
                LimitCheck(limiter: enforced, identifier: "a"),
                LimitCheck(limiter: shadow, identifier: "a", shadow: true),
            ])
            XCTAssertTrue(decisions[0].allowed)
            if !decisions[1].allowed { shadowDenials += 1 }
        }
        XCTAssertEqual(shadowDenials, 3, "the shadow spends its budget as if enforced: 2 admitted, 3 would-be denials")
        XCTAssertEqual(store.decide([LimitCheck(limiter: enforced, identifier: "a")])[0].remaining, 94, "all five spent the enforced budget")
    }

    func testAShadowSpendsNothingForARequestTheEnforcedOnesDeny() {
        let store = MemoryStore(id: "mem", clock: ManualClock())
        let enforced = window("enforced", limit: 1)
        let shadow = window("shadow", limit: 100)
        for _ in 0..<3 {
            _ = store.decide([LimitCheck(limiter: enforced, identifier: "a"), LimitCheck(limiter: shadow, identifier: "a", shadow: true)])
        }
        XCTAssertEqual(store.decide([LimitCheck(limiter: shadow, identifier: "a")])[0].remaining, 98, "only the admitted request spent the shadow's budget")
    }

    func testTheLocalFallbackDividesEveryLimitAndMarksItsDecisions() {
        let clock = ManualClock()
        let fallback = LocalFallback(storeID: "redis", divisor: 3, clock: clock)
        let auth = LimiterConfig(id: "auth", storeID: "redis", algorithm: .slidingWindow(SlidingWindowRule(limit: 10, windowSeconds: 60)), failClosed: true)
        let decisions = (0..<5).map { _ in fallback.decide([LimitCheck(limiter: auth, identifier: "a")])[0] }
        XCTAssertEqual(decisions.map(\.allowed), [true, true, true, false, false], "10 / 3 gateways: 3 each")
        XCTAssertTrue(decisions.allSatisfy(\.decidedLocally))
        XCTAssertEqual(decisions[0].limit, 3, "headers announce the local limit")

        let bucket = LimiterConfig(id: "b", storeID: "redis", algorithm: .tokenBucket(TokenBucketRule(ratePerSecond: 30, burst: 60)), maxConcurrent: 7)
        XCTAssertEqual(
            LocalFallback.scale(bucket, by: 3),
            LimiterConfig(id: "b", storeID: "redis", algorithm: .tokenBucket(TokenBucketRule(ratePerSecond: 10, burst: 20)), maxConcurrent: 2)
        )
        let tiny = LimiterConfig(id: "t", storeID: "redis", algorithm: .slidingWindow(SlidingWindowRule(limit: 2, windowSeconds: 1)), maxConcurrent: 1)
        XCTAssertEqual(LocalFallback.scale(tiny, by: 10).advertisedLimit, 1, "never below one request")
    }

    func testTheLocalFallbackGivesBackTheSlotsItTook() {
        let fallback = LocalFallback(storeID: "redis", divisor: 1, clock: ManualClock())
        let capped = LimiterConfig(id: "c", storeID: "redis", algorithm: .tokenBucket(nil), maxConcurrent: 1)
        let check = [LimitCheck(limiter: capped, identifier: "a")]
        XCTAssertTrue(fallback.decide(check)[0].allowed)
        XCTAssertFalse(fallback.decide(check)[0].allowed)
        fallback.release(check)
        XCTAssertTrue(fallback.decide(check)[0].allowed)
    }
}
