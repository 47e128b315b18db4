import Foundation
import TestSupport
import XCTest

/// A client flooding a limit it has exhausted costs Redis next to nothing, and is told the truth.
final class DenialCacheEndToEndTests: XCTestCase {
    private var redis: RedisServer!
    private var harness: GatewayHarness!

    override func setUpWithError() throws {
        redis = try RedisServer()
        harness = try GatewayHarness(
            rateSync: """
                [stores.redis]
                strategy = "redis"
                url = "${REDIS_URL}"
                [stores.uncached]
                strategy = "redis"
                url = "${REDIS_URL}"
                [limiters.login]
                store_id = "redis"
                algorithm = "sliding_window"
                limit = 5
                window_seconds = 60
                [limiters.short]
                store_id = "redis"
                algorithm = "sliding_window"
                limit = 1
                window_seconds = 2
                [limiters.plain]
                store_id = "uncached"
                algorithm = "sliding_window"
                limit = 1
                window_seconds = 60
                """,
            routes: """
                [[routes]]
                name = "short"
                path_prefix = "/short"
                upstream = "app"
                limiters = ["short"]
                [[routes]]
                name = "plain"
                path_prefix = "/plain"
                upstream = "app"
                limiters = ["plain"]
                [[routes]]
                name = "login"
                upstream = "app"
                limiters = ["login"]
                """,
            gatewayExtras: """
                [stores.uncached]
                deny_cache = false
                """,
            environment: ["REDIS_URL": redis.url]
        )
    }

    override func tearDownWithError() throws {
        harness?.stop()
        redis?.stop()
    }

    /// Requests wrk sent and how many were not 2xx.
    private func flood(_ path: String, seconds: Int) throws -> (total: Int, refused: Int) {
        let load = try ChildProcess(URL(fileURLWithPath: "/usr/bin/wrk"), ["-t1", "-c8", "-d\(seconds)s", "\(harness.base)\(path)"])
        XCTAssertEqual(try load.waitForExit(timeout: Double(seconds) + 20), 0)
        let summary = WrkSummary(output: load.text)
        return (summary.requests, summary.non2xx)
    }

    func testAFloodAfterTheDenialCostsRedisAHandfulOfCallsAndRetryAfterStaysTrue() throws {
        for _ in 0..<5 { XCTAssertEqual(try curl(["-o", "/dev/null", "\(harness.base)/login"]).status, 200) }
        let before = try redis.calls(of: "evalsha")
        let (total, refused) = try flood("/login", seconds: 5)
        let during = try redis.calls(of: "evalsha") - before
        XCTAssertEqual(refused, total, "all denied")
        XCTAssertGreaterThan(total, 1000, "a real flood")
        // A connection sends its next request only after its answer, and the first denial answered on
        // an event loop is cached for every connection of that loop: so at most one call per connection.
        XCTAssertLessThanOrEqual(during, 8, "\(during) script calls for \(total) denied requests")
        // One script call can carry several requests of a tick, so the bound on what reached the store
        // is per connection too, not the number of calls.
        XCTAssertGreaterThanOrEqual(try harness.metric("ratesync_denial_cache_hits_total", ["store": "redis"]) ?? 0, Double(total - 8))

        // The wait it announces is Redis's own: when the oldest admission leaves the window.
        let answer = try curl(["\(harness.base)/login"])
        XCTAssertEqual(answer.status, 429)
        let oldest = try XCTUnwrap(Double(try redis.cli(["ZRANGE", "rate_limit:login:127.0.0.1:window", "0", "0", "WITHSCORES"]).split(separator: "\n").last ?? ""))
        let redisNow = try redis.cli(["TIME"]).split(separator: "\n").compactMap { Double($0) }
        let truth = oldest + 60 - (redisNow[0] + redisNow[1] / 1e6)
        let announced = try XCTUnwrap(answer.headers["retry-after"].flatMap(Double.init))
        XCTAssertEqual(announced, truth.rounded(.up), accuracy: 1, "announced \(announced), Redis says \(truth)")
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:login:127.0.0.1:window"]), "5", "nothing more was admitted")
    }

    func testOnceTheRetryTimeComesTheStoreDecidesAgain() throws {
        XCTAssertEqual(try curl(["-o", "/dev/null", "\(harness.base)/short"]).status, 200)
        XCTAssertEqual(try curl(["-o", "/dev/null", "\(harness.base)/short"]).status, 429)
        let deadline = Date().addingTimeInterval(5)
        var admittedAgain: Date?
        let denied = Date()
        while admittedAgain == nil && Date() < deadline {
            if try curl(["-o", "/dev/null", "\(harness.base)/short"]).status == 200 { admittedAgain = Date() }
        }
        let again = try XCTUnwrap(admittedAgain, "admitted again once the window moved on")
        XCTAssertLessThan(again.timeIntervalSince(denied), 3)
    }

    func testWithTheCacheOffEveryRequestAsksTheStore() throws {
        XCTAssertEqual(try curl(["-o", "/dev/null", "\(harness.base)/plain"]).status, 200)
        let before = try redis.calls(of: "evalsha")
        let transfers = (0..<100).flatMap { _ in ["-o", "/dev/null", "\(harness.base)/plain"] }
        _ = try curl(["-s"] + transfers, timeout: 60)
        XCTAssertGreaterThanOrEqual(try redis.calls(of: "evalsha") - before, 100)
    }
}
