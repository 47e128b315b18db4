import RateSync
import XCTest

/// The denial cache never changes an answer: checked against the memory store on a clock moved
/// by hand, and against each rule that keeps it exact.
final class DenialCacheTests: XCTestCase {
    private let window = LimiterConfig(id: "w", storeID: "redis", algorithm: .slidingWindow(SlidingWindowRule(limit: 3, windowSeconds: 10)))
    private let bucket = LimiterConfig(id: "b", storeID: "redis", algorithm: .tokenBucket(TokenBucketRule(ratePerSecond: 2, burst: 2)))

    func testACachedDenialIsWhatTheStoreWouldSayUntilItsRetryTime() {
        for limiter in [window, bucket] {
            let clock = ManualClock()
            let store = MemoryStore(id: "redis", clock: clock)
            let cache = DenialCache()
            var asked = 0
            // A client retrying every 50 ms for 12 s: the cache answers whenever it holds a
            // denial; otherwise the store is asked and its answer noted.
            for _ in 0..<240 {
                let check = LimitCheck(limiter: limiter, identifier: "c")
                let truth = store.decide([check])[0]
                if let cached = cache.denial(of: check, storeID: "redis", now: clock.now()) {
                    XCTAssertFalse(truth.allowed, "\(limiter.id): a cached denial while the store would admit")
                    XCTAssertEqual(cached.retryAfter, truth.retryAfter, accuracy: 1e-6, limiter.id)
                    XCTAssertEqual(cached.limit, truth.limit)
                } else {
                    asked += 1
                    cache.record(truth, of: check, storeID: "redis", now: clock.now())
                }
                clock.advance(0.05)
            }
            XCTAssertLessThan(asked, 120, "\(limiter.id): the store is asked far less than every time (\(asked))")
        }
    }

    func testACheaperRequestOrAChangedLimiterAsksTheStoreAgain() {
        let cache = DenialCache()
        let costly = LimitCheck(limiter: window, identifier: "c", cost: 3)
        cache.record(Decision(allowed: false, limit: 3, remaining: 0, retryAfter: 5, resetAfter: 8, now: 100), of: costly, storeID: "redis", now: 100)
        XCTAssertNotNil(cache.denial(of: LimitCheck(limiter: window, identifier: "c", cost: 4), storeID: "redis", now: 101))
        XCTAssertNil(cache.denial(of: LimitCheck(limiter: window, identifier: "c", cost: 1), storeID: "redis", now: 101), "one unit may fit sooner than three")
        var raised = window
        raised.algorithm = .slidingWindow(SlidingWindowRule(limit: 30, windowSeconds: 10))
        XCTAssertNil(cache.denial(of: LimitCheck(limiter: raised, identifier: "c", cost: 3), storeID: "redis", now: 101), "a reload changed the limit")
        XCTAssertNil(cache.denial(of: LimitCheck(limiter: window, identifier: "other", cost: 3), storeID: "redis", now: 101))
        XCTAssertNil(cache.denial(of: costly, storeID: "another-store", now: 101))
        let held = cache.denial(of: costly, storeID: "redis", now: 102)
        XCTAssertEqual(held?.retryAfter ?? 0, 3, accuracy: 1e-9)
        XCTAssertEqual(held?.resetAfter ?? 0, 6, accuracy: 1e-9)
        XCTAssertNil(cache.denial(of: costly, storeID: "redis", now: 105), "from the retry time on, the store decides")
        XCTAssertEqual(cache.count, 0, "and the entry is gone")
    }

    func testWhatMustNotBeCachedIsNot() {
        let cache = DenialCache()
        let denial = Decision(allowed: false, limit: 1, remaining: 0, retryAfter: 5, resetAfter: 5, now: 0)
        let capped = LimiterConfig(id: "c", storeID: "redis", algorithm: .tokenBucket(nil), maxConcurrent: 1)
        cache.record(denial, of: LimitCheck(limiter: capped, identifier: "c"), storeID: "redis", now: 0)
        cache.record(denial, of: LimitCheck(limiter: window, identifier: "c", shadow: true), storeID: "redis", now: 0)
        var local = denial
        local.decidedLocally = true
        cache.record(local, of: LimitCheck(limiter: window, identifier: "l"), storeID: "redis", now: 0)
        var admitted = denial
        admitted.allowed = true
        cache.record(admitted, of: LimitCheck(limiter: window, identifier: "a"), storeID: "redis", now: 0)
        XCTAssertEqual(cache.count, 0)
    }

    func testTheCacheStaysBounded() {
        let cache = DenialCache()
        let denial = Decision(allowed: false, limit: 3, remaining: 0, retryAfter: 60, resetAfter: 60, now: 0)
        for index in 0..<(DenialCache.capacity + 10) {
            cache.record(denial, of: LimitCheck(limiter: window, identifier: "\(index)"), storeID: "redis", now: 0)
        }
        XCTAssertLessThanOrEqual(cache.count, DenialCache.capacity)
    }
}
