import RateSync
import XCTest

final class MemoryStoreTests: XCTestCase {
    private func limiter(_ id: String, _ algorithm: LimiterConfig.Algorithm, maxConcurrent: Int? = nil) -> LimiterConfig {
        LimiterConfig(id: id, storeID: "mem", algorithm: algorithm, maxConcurrent: maxConcurrent)
    }

    func testKeysAreLimiterAndIdentifier() {
        let clock = ManualClock()
        let store = MemoryStore(id: "mem", clock: clock)
        let auth = limiter("auth", .slidingWindow(SlidingWindowRule(limit: 1, windowSeconds: 60)))
        XCTAssertEqual(LimitCheck(limiter: auth, identifier: "10.0.0.1").key, "auth:10.0.0.1")
        XCTAssertTrue(store.decide([LimitCheck(limiter: auth, identifier: "a")])[0].allowed)
        XCTAssertFalse(store.decide([LimitCheck(limiter: auth, identifier: "a")])[0].allowed)
        XCTAssertTrue(store.decide([LimitCheck(limiter: auth, identifier: "b")])[0].allowed, "other client, own budget")
    }

    func testAKeyIsTheLimiterAColonAndTheIdentifierByteForByte() {
        let identifiers = [
            "", "a", "10.0.0.1", "2001:db8::1", "sha256:\(String(repeating: "f", count: 64))",
            "\u{301}x", "caf\u{E9}", "\u{1F469}\u{200D}\u{1F4BB}", "{tag}", String(repeating: "\u{E9}", count: 300),
        ]
        for limiterID in ["a", "auth", "a-much-longer-limiter-name-than-fits-in-a-small-string"] {
            let limiter = limiter(limiterID, .tokenBucket(TokenBucketRule(ratePerSecond: 1)))
            for identifier in identifiers {
                let key = LimitCheck(limiter: limiter, identifier: identifier).key
                XCTAssertEqual(Array(key.utf8), Array(limiterID.utf8) + [UInt8(ascii: ":")] + Array(identifier.utf8))
                XCTAssertEqual(key, limiterID + ":" + identifier)
            }
        }
    }

    func testRouteLimitersAreAllOrNothing() {
        let store = MemoryStore(id: "mem", clock: ManualClock())
        let generous = limiter("generous", .slidingWindow(SlidingWindowRule(limit: 100, windowSeconds: 60)))
        let strict = limiter("strict", .slidingWindow(SlidingWindowRule(limit: 2, windowSeconds: 60)))
        let checks = [LimitCheck(limiter: generous, identifier: "c"), LimitCheck(limiter: strict, identifier: "c")]
        for _ in 0..<10 { _ = store.decide(checks) }
        // Only the two admitted requests consumed the generous budget: 98 remain.
        let alone = store.decide([LimitCheck(limiter: generous, identifier: "c")])[0]
        XCTAssertEqual(alone.remaining, 97)
    }

    func testExpiredKeysAreSweptSoMemoryStaysBounded() {
        let clock = ManualClock()
        let store = MemoryStore(id: "mem", clock: clock, maxKeys: 50_000)
        let bucket = limiter("public", .tokenBucket(TokenBucketRule(ratePerSecond: 100)))
        for round in 0..<5 {
            for client in 0..<10_000 {
                _ = store.decide([LimitCheck(limiter: bucket, identifier: "\(round)-\(client)")])
            }
            clock.advance(2)  // every bucket has refilled: its key means nothing any more
        }
        XCTAssertLessThan(store.keyCount, 20_000)
    }

    func testHardCapHoldsEvenForLiveKeys() {
        let store = MemoryStore(id: "mem", clock: ManualClock(), maxKeys: 1_000)
        let window = limiter("auth", .slidingWindow(SlidingWindowRule(limit: 10, windowSeconds: 300)))
        for client in 0..<20_000 { _ = store.decide([LimitCheck(limiter: window, identifier: "\(client)")]) }
        XCTAssertLessThanOrEqual(store.keyCount, 1_000)
    }

    func testConcurrencySlotsAreTakenAndGivenBack() {
        let store = MemoryStore(id: "mem", clock: ManualClock())
        let capped = limiter("uploads", .tokenBucket(nil), maxConcurrent: 2)
        let check = [LimitCheck(limiter: capped, identifier: "u")]
        XCTAssertTrue(store.decide(check)[0].allowed)
        XCTAssertTrue(store.decide(check)[0].allowed)
        XCTAssertFalse(store.decide(check)[0].allowed)
        store.release(check)
        XCTAssertTrue(store.decide(check)[0].allowed)
    }
}
