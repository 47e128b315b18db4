import RateSync
import XCTest

/// rate-sync's `timeout`: a request its rate would deny waits for a slot that comes within the
/// timeout, reserved for it in the store; beyond it, it is denied at once. On a clock moved by hand.
final class WaitingTests: XCTestCase {
    private let bucket = LimiterConfig(
        id: "b",
        storeID: "mem",
        algorithm: .tokenBucket(TokenBucketRule(ratePerSecond: 10, burst: 1)),
        timeout: 2
    )
    private let window = LimiterConfig(
        id: "w",
        storeID: "mem",
        algorithm: .slidingWindow(SlidingWindowRule(limit: 2, windowSeconds: 1)),
        timeout: 1
    )

    func testSimultaneousRequestsAreSpacedByTheRateUpToTheTimeoutThenDeniedAtOnce() {
        let store = MemoryStore(id: "mem", clock: ManualClock())
        let decisions = (0..<25).map { _ in store.decide([LimitCheck(limiter: bucket, identifier: "a", maxWait: 2)])[0] }
        let admitted = decisions.filter(\.allowed)
        XCTAssertEqual(admitted.count, 21, "now, then one per 0.1 s up to 2 s ahead")
        for (index, decision) in admitted.enumerated() {
            XCTAssertEqual(decision.delay, Double(index) * 0.1, accuracy: 1e-5, "spaced by the emission interval, never closer")
            XCTAssertEqual(decision.remaining, 0)
            XCTAssertEqual(decision.retryAfter, 0)
        }
        for denied in decisions.dropFirst(21) {
            XCTAssertFalse(denied.allowed)
            XCTAssertEqual(denied.delay, 0, "a denial is answered at once")
            XCTAssertGreaterThan(denied.retryAfter, 2)
        }
    }

    func testWithoutAWaitAllowedTheSameRequestIsDenied() {
        let store = MemoryStore(id: "mem", clock: ManualClock())
        XCTAssertTrue(store.decide([LimitCheck(limiter: bucket, identifier: "a")])[0].allowed)
        let denied = store.decide([LimitCheck(limiter: bucket, identifier: "a")])[0]
        XCTAssertFalse(denied.allowed, "maxWait 0: the gateway had no place for one more waiting request")
        XCTAssertEqual(denied.retryAfter, 0.1, accuracy: 1e-5)
    }

    func testAWindowAdmissionWaitsForTheOldestToLeaveAndIsLoggedAtItsTime() {
        let clock = ManualClock()
        let store = MemoryStore(id: "mem", clock: clock)
        func ask() -> Decision { store.decide([LimitCheck(limiter: window, identifier: "a", maxWait: 1)])[0] }
        XCTAssertEqual(ask().delay, 0)
        clock.advance(0.25)
        XCTAssertEqual(ask().delay, 0)
        clock.advance(0.25)
        // Full (entries at 0 and 0.25; now 0.5): the next slot is at 1.0, then 1.25.
        XCTAssertEqual(ask().delay, 0.5, accuracy: 1e-5)
        XCTAssertEqual(ask().delay, 0.75, accuracy: 1e-5)
        // Then the entries at 1.0 and 1.25 must leave first: 2.0 is 1.5 s ahead, beyond the timeout.
        let denied = ask()
        XCTAssertFalse(denied.allowed)
        XCTAssertEqual(denied.retryAfter, 1.5, accuracy: 1e-5)
        // At 1.1, the next slot is when 1.0 leaves: 2.0, and (1.0, 2.0] then holds 1.25 and 2.0.
        clock.advance(0.6)
        XCTAssertEqual(ask().delay, 0.9, accuracy: 1e-5)
    }

    func testAGroupWaitsForItsSlowestLimiterAndLogsEveryAdmissionThen() {
        let clock = ManualClock()
        let store = MemoryStore(id: "mem", clock: clock)
        let fast = LimiterConfig(id: "fast", storeID: "mem", algorithm: .tokenBucket(TokenBucketRule(ratePerSecond: 100, burst: 1)), timeout: 2)
        func ask() -> [Decision] {
            store.decide([LimitCheck(limiter: bucket, identifier: "a", maxWait: 2), LimitCheck(limiter: fast, identifier: "a", maxWait: 2)])
        }
        XCTAssertEqual(ask().map(\.delay), [0, 0])
        let second = ask()
        XCTAssertEqual(second[0].delay, 0.1, accuracy: 1e-5)
        XCTAssertEqual(second[1].delay, 0.1, accuracy: 1e-5, "the whole group goes when its slowest limiter has room")
        // The fast limiter's admission was logged at 0.1, not at 0.01: its next slot is 0.11.
        let fastAlone = store.decide([LimitCheck(limiter: fast, identifier: "a", maxWait: 2)])[0]
        XCTAssertEqual(fastAlone.delay, 0.11, accuracy: 1e-5)
    }

    func testADeniedGroupReservesNothing() {
        let store = MemoryStore(id: "mem", clock: ManualClock())
        let strict = LimiterConfig(id: "strict", storeID: "mem", algorithm: .slidingWindow(SlidingWindowRule(limit: 1, windowSeconds: 60)))
        XCTAssertTrue(store.decide([LimitCheck(limiter: bucket, identifier: "a", maxWait: 2), LimitCheck(limiter: strict, identifier: "a")]).allSatisfy(\.allowed))
        let denied = store.decide([LimitCheck(limiter: bucket, identifier: "a", maxWait: 2), LimitCheck(limiter: strict, identifier: "a")])
        XCTAssertTrue(denied[0].allowed)
        XCTAssertFalse(denied[1].allowed)
        XCTAssertEqual(denied[0].delay, 0, "nothing waits for a request that is denied")
        XCTAssertEqual(store.decide([LimitCheck(limiter: bucket, identifier: "a", maxWait: 2)])[0].delay, 0.1, accuracy: 1e-5, "the bucket's slot was not taken")
    }

    func testAShadowNeverWaits() {
        let store = MemoryStore(id: "mem", clock: ManualClock())
        _ = store.decide([LimitCheck(limiter: bucket, identifier: "a", shadow: true, maxWait: 2)])
        let second = store.decide([LimitCheck(limiter: bucket, identifier: "a", shadow: true, maxWait: 2)])[0]
        XCTAssertFalse(second.allowed, "a shadow that would deny says so, and holds nothing up")
        XCTAssertEqual(second.delay, 0)
    }

    func testAReservationGivenBackFreesItsSlot() {
        let store = MemoryStore(id: "mem", clock: ManualClock())
        for limiter in [bucket, window] {
            func ask() -> (LimitCheck, Decision) {
                var check = LimitCheck(limiter: limiter, identifier: "a", maxWait: 1)
                let decision = store.decide([check])[0]
                check.reservation = decision.reservation
                return (check, decision)
            }
            let firsts = (0..<(limiter.id == "w" ? 2 : 1)).map { _ in ask() }
            XCTAssertTrue(firsts.allSatisfy { $0.1.delay == 0 && $0.1.reservation == nil }, "admissions now hold no reservation")
            let (waiting, decision) = ask()
            XCTAssertGreaterThan(decision.delay, 0)
            XCTAssertNotNil(decision.reservation)
            store.giveBack([waiting])
            let again = ask().1
            XCTAssertTrue(again.allowed)
            XCTAssertEqual(again.delay, decision.delay, accuracy: 1e-5, "\(limiter.id): the slot given back is the next one offered")
        }
    }
}
