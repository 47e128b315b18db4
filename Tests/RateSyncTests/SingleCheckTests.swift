import RateSync
import TestSupport
import XCTest

/// The one-check route (`checkImmediately(_:)` with one check) decides exactly what a group of
/// that one check decides: the same answers, the same state left behind, on every algorithm,
/// with waits, shadows and concurrency slots, on a clock moved by hand.
final class SingleCheckTests: XCTestCase {
    private let limiters = [
        LimiterConfig(id: "bucket", storeID: "mem", algorithm: .tokenBucket(TokenBucketRule(ratePerSecond: 5, burst: 3)), timeout: 0.5),
        LimiterConfig(id: "window", storeID: "mem", algorithm: .slidingWindow(SlidingWindowRule(limit: 3, windowSeconds: 1)), timeout: 0.4),
        LimiterConfig(id: "slots", storeID: "mem", algorithm: .tokenBucket(nil), maxConcurrent: 2),
        LimiterConfig(id: "both", storeID: "mem", algorithm: .tokenBucket(TokenBucketRule(ratePerSecond: 2, burst: 2)), maxConcurrent: 1, timeout: 1),
    ]

    func testOneCheckDecidesWhatAGroupOfThatOneCheckDecides() {
        let clock = ManualClock()
        let single = MemoryStore(id: "mem", clock: clock)
        let group = MemoryStore(id: "mem", clock: clock)
        var random = SplitMix(seed: 7)
        var admittedWithSlots: [LimitCheck] = []
        var outcomes = (allowed: 0, denied: 0, waited: 0)
        for step in 0..<4_000 {
            let limiter = limiters[Int(random.next() % UInt64(limiters.count))]
            let check = LimitCheck(
                limiter: limiter,
                identifier: "client-\(random.next() % 3)",
                cost: 1 + Int(random.next() % 2),
                shadow: random.next() % 5 == 0,
                maxWait: random.next() % 2 == 0 ? (limiter.timeout ?? 0) : 0
            )
            let one = single.checkImmediately(check)
            let all = group.checkImmediately([check])
            XCTAssertEqual(one, all?.first, "step \(step): \(check.key)")
            guard let decision = one else { return XCTFail("an in-process store always answers") }
            if decision.allowed {
                outcomes.allowed += 1
                if decision.delay > 0 { outcomes.waited += 1 }
                if limiter.maxConcurrent != nil { admittedWithSlots.append(check) }
            } else {
                outcomes.denied += 1
            }
            if random.next() % 3 == 0, !admittedWithSlots.isEmpty {
                let finished = admittedWithSlots.removeFirst()
                single.release([finished])
                group.release([finished])
            }
            clock.advance(Double(random.next() % 100) / 1_000)
        }
        XCTAssertEqual(single.keyCount, group.keyCount)
        // The sequence reaches every kind of answer, or it would prove little.
        XCTAssertGreaterThan(outcomes.allowed, 500)
        XCTAssertGreaterThan(outcomes.denied, 500)
        XCTAssertGreaterThan(outcomes.waited, 100)
    }
}
