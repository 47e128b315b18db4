import NIOCore
import RateSync
import XCTest

final class SlidingWindowTests: XCTestCase {
    private let start = 1_700_000_000.0
    private let rule = SlidingWindowRule(limit: 3, windowSeconds: 10)

    func testAdmitsTheLimitThenDenies() {
        var log: CircularBuffer<Double> = []
        let decisions = (0..<5).map { i in SlidingWindowLog.evaluate(log: &log, now: start + Double(i), rule: rule) }
        XCTAssertEqual(decisions.map(\.allowed), [true, true, true, false, false])
        XCTAssertEqual(decisions.map(\.remaining), [2, 1, 0, 0, 0])
        XCTAssertEqual(log.count, 3, "denied requests are not logged")
    }

    func testRetryAfterIsWhenTheOldestAdmissionLeaves() {
        var log: CircularBuffer<Double> = []
        for offset in [0.0, 2, 4] { _ = SlidingWindowLog.evaluate(log: &log, now: start + offset, rule: rule) }
        let denied = SlidingWindowLog.evaluate(log: &log, now: start + 5, rule: rule)
        XCTAssertFalse(denied.allowed)
        XCTAssertEqual(denied.retryAfter, 5, accuracy: 1e-9)
        XCTAssertEqual(denied.resetAfter, 9, accuracy: 1e-9, "full again when the newest admission leaves")
    }

    func testWindowEdgeIsExclusive() {
        var log: CircularBuffer<Double> = []
        for _ in 0..<3 { _ = SlidingWindowLog.evaluate(log: &log, now: start, rule: rule) }
        XCTAssertFalse(SlidingWindowLog.evaluate(log: &log, now: start + 9.999, rule: rule).allowed)
        // Exactly one window later the first admissions have left (as ZREMRANGEBYSCORE -inf now-window).
        XCTAssertTrue(SlidingWindowLog.evaluate(log: &log, now: start + 10, rule: rule).allowed)
    }

    func testNeverMoreThanLimitInAnyWindow() {
        var log: CircularBuffer<Double> = []
        var admittedAt: [Double] = []
        for step in 0..<2000 {
            let now = start + Double(step) * 0.037
            if SlidingWindowLog.evaluate(log: &log, now: now, rule: rule).allowed { admittedAt.append(now) }
        }
        for (index, time) in admittedAt.enumerated() {
            let inWindow = admittedAt[index...].prefix { $0 < time + rule.windowSeconds }.count
            XCTAssertLessThanOrEqual(inWindow, rule.limit)
        }
        XCTAssertGreaterThan(admittedAt.count, 3 * 7)
    }
}
