import Foundation
import NIOCore
import NIOEmbedded
import RateSync
import XCTest

final class CircuitBreakerTests: XCTestCase {
    func testOpensAfterThresholdConsecutiveFailuresOnly() {
        var breaker = CircuitBreaker(threshold: 3, timeout: 10)
        XCTAssertNil(breaker.recordFailure(now: 0, reason: "x"))
        XCTAssertNil(breaker.recordFailure(now: 0, reason: "x"))
        XCTAssertNil(breaker.recordSuccess(), "a success resets the count")
        XCTAssertNil(breaker.recordFailure(now: 0, reason: "x"))
        XCTAssertNil(breaker.recordFailure(now: 0, reason: "x"))
        XCTAssertEqual(breaker.recordFailure(now: 5, reason: "timeout")?.to, "open")
        XCTAssertEqual(breaker.state, .open(until: 15))
    }

    func testOpenRejectsWithTheTimeLeftThenLetsOneProbeThrough() {
        var breaker = CircuitBreaker(threshold: 1, timeout: 10)
        _ = breaker.recordFailure(now: 100, reason: "x")
        XCTAssertEqual(breaker.admit(now: 104).0, .reject(retryAfter: 6))
        let (probe, transition) = breaker.admit(now: 110)
        XCTAssertEqual(probe, .probe)
        XCTAssertEqual(transition?.to, "half_open")
        // While the probe is out, everyone else is still answered by the fail policy.
        XCTAssertEqual(breaker.admit(now: 110.1).0, .reject(retryAfter: 1))
        XCTAssertEqual(breaker.admit(now: 110.2).0, .reject(retryAfter: 1))
    }

    func testProbeSuccessClosesAndFailureReopens() {
        var breaker = CircuitBreaker(threshold: 1, timeout: 10)
        _ = breaker.recordFailure(now: 0, reason: "x")
        _ = breaker.admit(now: 10)
        XCTAssertEqual(breaker.recordFailure(now: 10, reason: "still down")?.to, "open")
        XCTAssertEqual(breaker.state, .open(until: 20))
        _ = breaker.admit(now: 20)
        XCTAssertEqual(breaker.recordSuccess()?.to, "closed")
        XCTAssertEqual(breaker.admit(now: 20).0, .use)
    }

    func testForceOpenForADegradedStart() {
        var breaker = CircuitBreaker(threshold: 5, timeout: 60)
        XCTAssertEqual(breaker.forceOpen(now: 0, reason: "unreachable")?.to, "open")
        XCTAssertEqual(breaker.admit(now: 59).0, .reject(retryAfter: 1))
        XCTAssertEqual(breaker.admit(now: 60).0, .probe)
    }

    /// A store whose answers the test scripts, to drive the decorator.
    final class ScriptedStore: RateLimitStore, @unchecked Sendable {
        let id = "scripted"
        let engineName = "scripted"
        var failing = true
        var calls = 0
        func check(_ checks: [LimitCheck], on eventLoop: any EventLoop) -> EventLoopFuture<[Decision]> {
            calls += 1
            if failing { return eventLoop.makeFailedFuture(StoreFailure(storeID: id, reason: "down")) }
            return eventLoop.makeSucceededFuture(checks.map { _ in Decision(allowed: true, limit: 1, remaining: 0, retryAfter: 0, resetAfter: 1, now: 0) })
        }
        func release(_ checks: [LimitCheck]) {}
        func probe(on eventLoop: any EventLoop) -> EventLoopFuture<Void> { eventLoop.makeSucceededVoidFuture() }
    }

    func testAnOpenBreakerKeepsRequestsAwayFromTheStore() throws {
        let loop = EmbeddedEventLoop()
        let clock = ManualClock()
        let inner = ScriptedStore()
        let transitions = NIOLockedTransitions()
        let store = BreakerGuardedStore(wrapping: inner, threshold: 2, timeout: 5, clock: clock) { _, t in transitions.append(t.to) }
        let check = [LimitCheck(limiter: LimiterConfig(id: "l", storeID: "s", algorithm: .tokenBucket(TokenBucketRule(ratePerSecond: 1))), identifier: "i")]
        for _ in 0..<10 { XCTAssertThrowsError(try store.check(check, on: loop).wait()) }
        XCTAssertEqual(inner.calls, 2, "after two failures the store is no longer touched")
        XCTAssertThrowsError(try store.check(check, on: loop).wait()) { error in
            XCTAssertEqual((error as? StoreFailure)?.retryAfter ?? 0, 5, accuracy: 0.01)
        }
        clock.advance(5)
        inner.failing = false
        XCTAssertNoThrow(try store.check(check, on: loop).wait())
        XCTAssertEqual(inner.calls, 3)
        XCTAssertEqual(store.breakerStateName, "closed")
        XCTAssertEqual(transitions.all, ["open", "half_open", "closed"])
    }

    func testAnOpenBreakerWithALocalFallbackDecidesInProcessUntilTheStoreIsBack() throws {
        let loop = EmbeddedEventLoop()
        let clock = ManualClock()
        let inner = ScriptedStore()
        let fallback = LocalFallback(storeID: "s", divisor: 2, clock: clock)
        let store = BreakerGuardedStore(wrapping: inner, threshold: 2, timeout: 5, clock: clock, localFallback: fallback)
        let limiter = LimiterConfig(id: "l", storeID: "s", algorithm: .slidingWindow(SlidingWindowRule(limit: 4, windowSeconds: 60)), failClosed: true)
        let check = [LimitCheck(limiter: limiter, identifier: "i")]
        for _ in 0..<2 {
            XCTAssertThrowsError(try store.check(check, on: loop).wait(), "until the breaker opens, failures are failures")
        }
        let local = try (0..<3).map { _ in try store.check(check, on: loop).wait()[0] }
        XCTAssertEqual(local.map(\.allowed), [true, true, false], "4 / 2 admitted in process")
        XCTAssertTrue(local.allSatisfy(\.decidedLocally))
        XCTAssertEqual(inner.calls, 2, "the store is not touched while open")
        clock.advance(5)
        inner.failing = false
        let shared = try store.check(check, on: loop).wait()[0]
        XCTAssertFalse(shared.decidedLocally, "the store decides again once it answers")
        XCTAssertEqual(store.breakerStateName, "closed")
    }
}

final class NIOLockedTransitions: @unchecked Sendable {
    private var items: [String] = []
    private let lock = NSLock()
    func append(_ item: String) { lock.withLock { items.append(item) } }
    var all: [String] { lock.withLock { items } }
}
