import RateSync
import XCTest

final class GCRATests: XCTestCase {
    private let start = 1_700_000_000.0

    /// Runs `count` requests at one instant and returns how many were admitted.
    private func admitted(_ count: Int, tat: inout Double?, now: Double, rule: TokenBucketRule) -> Int {
        var admitted = 0
        for _ in 0..<count {
            let outcome = GCRA.evaluate(storedTAT: tat, now: now, rule: rule)
            if let newTAT = outcome.newTAT { tat = newTAT; admitted += 1 }
        }
        return admitted
    }

    func testFreshBucketAdmitsExactlyTheBurstAtOnce() {
        var tat: Double?
        let rule = TokenBucketRule(ratePerSecond: 10, burst: 5)
        XCTAssertEqual(admitted(20, tat: &tat, now: start, rule: rule), 5)
    }

    func testDefaultBurstIsOneSecondOfRate() {
        XCTAssertEqual(TokenBucketRule(ratePerSecond: 100).burst, 100)
        XCTAssertEqual(TokenBucketRule(ratePerSecond: 0.5).burst, 1)
        XCTAssertEqual(TokenBucketRule(ratePerSecond: 2.7).burst, 2)
    }

    func testRemainingCountsDownThroughTheBurst() {
        var tat: Double?
        let rule = TokenBucketRule(ratePerSecond: 1, burst: 3)
        var remaining: [Int] = []
        for _ in 0..<3 {
            let outcome = GCRA.evaluate(storedTAT: tat, now: start, rule: rule)
            tat = outcome.newTAT
            remaining.append(outcome.decision.remaining)
        }
        XCTAssertEqual(remaining, [2, 1, 0])
    }

    func testDenialSaysExactlyWhenARetrySucceeds() {
        var tat: Double?
        let rule = TokenBucketRule(ratePerSecond: 4, burst: 2)
        XCTAssertEqual(admitted(2, tat: &tat, now: start, rule: rule), 2)
        let denied = GCRA.evaluate(storedTAT: tat, now: start + 0.1, rule: rule)
        XCTAssertFalse(denied.decision.allowed)
        XCTAssertNil(denied.newTAT)
        // Unix seconds as a Double resolve to about 0.2 microseconds.
        XCTAssertEqual(denied.decision.retryAfter, 0.15, accuracy: 1e-6)
        XCTAssertEqual(denied.decision.resetAfter, 0.4, accuracy: 1e-6)
        // Just before the announced instant: still denied; at it: admitted.
        XCTAssertFalse(GCRA.evaluate(storedTAT: tat, now: start + 0.249, rule: rule).decision.allowed)
        XCTAssertTrue(GCRA.evaluate(storedTAT: tat, now: start + 0.25, rule: rule).decision.allowed)
    }

    func testRefillsAtTheRateAndNeverBeyondTheBurst() {
        var tat: Double?
        let rule = TokenBucketRule(ratePerSecond: 10, burst: 5)
        XCTAssertEqual(admitted(5, tat: &tat, now: start, rule: rule), 5)
        // 0.3 s later three tokens have come back.
        XCTAssertEqual(admitted(10, tat: &tat, now: start + 0.3, rule: rule), 3)
        // After a long quiet spell the bucket holds the burst, not more.
        XCTAssertEqual(admitted(100, tat: &tat, now: start + 60, rule: rule), 5)
    }

    func testBurstOfOneIsRateSyncsMinimumSpacing() {
        var tat: Double?
        let rule = TokenBucketRule(ratePerSecond: 2, burst: 1)
        XCTAssertEqual(admitted(3, tat: &tat, now: start, rule: rule), 1)
        XCTAssertEqual(admitted(3, tat: &tat, now: start + 0.49, rule: rule), 0)
        XCTAssertEqual(admitted(3, tat: &tat, now: start + 0.5, rule: rule), 1)
    }

    func testSustainedLoadAdmitsBurstPlusRateTimesDuration() {
        var tat: Double?
        let rule = TokenBucketRule(ratePerSecond: 50, burst: 20)
        var total = 0
        // A request every millisecond for 10 seconds.
        for step in 0..<10_000 {
            total += admitted(1, tat: &tat, now: start + Double(step) / 1000, rule: rule)
        }
        XCTAssertEqual(total, 20 + 50 * 10, accuracy: 1)
    }
}
