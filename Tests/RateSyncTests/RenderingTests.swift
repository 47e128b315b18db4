import Foundation
import RateSync
import XCTest

final class RenderingTests: XCTestCase {
    let auth = LimiterConfig(
        id: "auth",
        storeID: "s",
        algorithm: .slidingWindow(SlidingWindowRule(limit: 10, windowSeconds: 300)),
        failClosed: true
    )

    func testDeniedHeadersCarryTheRealValues() {
        let decision = Decision(allowed: false, limit: 10, remaining: 0, retryAfter: 6.2, resetAfter: 290.5, now: 1000.25)
        let headers = Dictionary(uniqueKeysWithValues: RateLimitHeaders(decision, limiter: auth).pairs)
        XCTAssertEqual(headers["X-RateLimit-Limit"], "10")
        XCTAssertEqual(headers["X-RateLimit-Remaining"], "0")
        XCTAssertEqual(headers["X-RateLimit-Reset"], "1291")
        XCTAssertEqual(headers["Retry-After"], "7")
        XCTAssertEqual(headers["RateLimit-Policy"], "\"auth\";q=10;w=300")
        XCTAssertEqual(headers["RateLimit"], "\"auth\";r=0;t=291")
    }

    func testStructuredFieldsWriteEveryDigitOfAnyInteger() {
        let wide = LimiterConfig(id: "a-long-policy-name-of-some-length", storeID: "s", algorithm: .slidingWindow(SlidingWindowRule(limit: 1, windowSeconds: 1)))
        for (limit, remaining) in [(0, 0), (9, 10), (100_000_000, 99_999_999), (Int.max, Int.min), (1_000_000_000_000_000_000, -1)] {
            let decision = Decision(allowed: true, limit: limit, remaining: remaining, retryAfter: 0, resetAfter: 0, now: 0)
            let headers = Dictionary(uniqueKeysWithValues: RateLimitHeaders(decision, limiter: wide).pairs)
            XCTAssertEqual(headers["RateLimit-Policy"], "\"\(wide.id)\";q=\(limit);w=1")
            XCTAssertEqual(headers["RateLimit"], "\"\(wide.id)\";r=\(remaining);t=0")
        }
    }

    /// The HTTP/1.1 lines written straight into a head are the fields `forEachField` hands over
    /// (which HTTP/2 heads and local answers use), byte for byte, in the room the headers claim.
    func testFieldLinesAreTheFieldsInOrder() {
        let wide = LimiterConfig(id: "a-long-policy-name-\u{e9}", storeID: "s", algorithm: .slidingWindow(SlidingWindowRule(limit: 1, windowSeconds: 1)))
        let numbers = [(0, 0), (10, 3), (Int.max, Int.min), (-1, 1_000_000_000_000_000_000)]
        for limiter in [auth, wide] {
            for (allowed, (limit, remaining)) in [true, false].flatMap({ allowed in numbers.map { (allowed, $0) } }) {
                let decision = Decision(allowed: allowed, limit: limit, remaining: remaining, retryAfter: 1e12, resetAfter: 1e12, now: 1e9)
                let headers = RateLimitHeaders(decision, limiter: limiter)
                var expected = ""
                headers.forEachField { name, value in
                    expected += String(decoding: name, as: UTF8.self) + ": " + String(decoding: value, as: UTF8.self) + "\r\n"
                }
                let room = headers.maximumByteCount + 4 * 6
                var bytes = [UInt8](repeating: 0, count: 3 + room)
                let written = bytes.withUnsafeMutableBytes { headers.writeFieldLines(into: $0, at: 3) }
                XCTAssertEqual(String(decoding: bytes[3..<(3 + written)], as: UTF8.self), expected)
                XCTAssertLessThanOrEqual(written, room)
            }
        }
    }

    func testDecimalDigitsAreWhatStringWritesAtEveryPowerOfTenAndAroundIt() {
        var values = [0, Int.max, Int.min, Int.min + 1]
        var power = 1
        for _ in 0..<19 {
            values += [power - 1, power, power + 1, -power, -(power - 1), power * 5 + 7]
            if power <= Int.max / 10 { power *= 10 }
        }
        var out = [UInt8](repeating: 0, count: DecimalDigits.maximumCount + 3)
        for value in values {
            let written = out.withUnsafeMutableBytes { DecimalDigits.write(value, into: $0, at: 3) }
            XCTAssertEqual(String(decoding: out[3..<3 + written], as: UTF8.self), String(value))
        }
    }

    func testAllowedResponsesHaveNoRetryAfterAndRetryAfterIsAtLeastOne() {
        let allowed = Decision(allowed: true, limit: 10, remaining: 4, retryAfter: 0, resetAfter: 300, now: 0)
        XCTAssertFalse(RateLimitHeaders(allowed, limiter: auth).pairs.contains { $0.0 == "Retry-After" })
        let soon = Decision(allowed: false, limit: 10, remaining: 0, retryAfter: 0.01, resetAfter: 0.01, now: 0)
        XCTAssertEqual(RateLimitHeaders.retryAfterSeconds(soon), 1)
    }

    func testTokenBucketPolicyWindowIsTheFullRefillTime() {
        let bucket = LimiterConfig(id: "public", storeID: "s", algorithm: .tokenBucket(TokenBucketRule(ratePerSecond: 2, burst: 10)))
        let decision = Decision(allowed: true, limit: 10, remaining: 9, retryAfter: 0, resetAfter: 0.5, now: 0)
        let headers = Dictionary(uniqueKeysWithValues: RateLimitHeaders(decision, limiter: bucket).pairs)
        XCTAssertEqual(headers["RateLimit-Policy"], "\"public\";q=10;w=5")
    }

    func testRateLimitedBodyHasRateSyncsShape() throws {
        let body = ErrorBody.rateLimited(limiterID: "auth", limit: 10, retryAfterSeconds: 7)
        XCTAssertEqual(
            body,
            #"{"detail":[{"type":"rate_limit_exceeded","msg":"Rate limit exceeded. Retry in 7 seconds.","context":{"retry_after_seconds":7,"limit":10,"limiter":"auth"}}]}"#
        )
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(body.utf8)))
    }

    func testJSONStringsAreEscaped() throws {
        let body = ErrorBody.simple(type: "x", message: "quote \" backslash \\ newline \n bell \u{7}")
        let parsed = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: [[String: String]]]
        XCTAssertEqual(parsed?["detail"]?.first?["msg"], "quote \" backslash \\ newline \n bell \u{7}")
    }

    func testClosestToDenyingPrefersDenialsThenFewestRemaining() {
        let a = Decision(allowed: true, limit: 100, remaining: 50, retryAfter: 0, resetAfter: 1, now: 0)
        let b = Decision(allowed: true, limit: 10, remaining: 3, retryAfter: 0, resetAfter: 1, now: 0)
        let c = Decision(allowed: false, limit: 5, remaining: 0, retryAfter: 2, resetAfter: 3, now: 0)
        XCTAssertEqual(Decision.indexClosestToDenying([a, b]).map { [a, b][$0] }, b)
        XCTAssertEqual(Decision.indexClosestToDenying([a, c, b]).map { [a, c, b][$0] }, c)
    }

    func testBetweenDenialsTheLongerWaitThenTheTighterLimitDescribes() {
        // A memory store and Redis denying the same request: their waits differ by clock noise.
        let memory = Decision(allowed: false, limit: 5, remaining: 0, retryAfter: 299.8013, resetAfter: 300, now: 0)
        let redis = Decision(allowed: false, limit: 3, remaining: 0, retryAfter: 299.8009, resetAfter: 300, now: 0)
        XCTAssertEqual(Decision.indexClosestToDenying([memory, redis]), 1)
        XCTAssertEqual(Decision.indexClosestToDenying([redis, memory]), 0)
        // A wait longer by a whole second still wins, whatever the limits.
        let longer = Decision(allowed: false, limit: 100, remaining: 0, retryAfter: 301.2, resetAfter: 302, now: 0)
        XCTAssertEqual(Decision.indexClosestToDenying([memory, redis, longer]), 2)
    }
}
