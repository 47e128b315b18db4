import Foundation
import TestSupport
import XCTest

/// Shadow limiters, request cost, and the local limits that decide while Redis is down, through
/// the real binary and a real Redis.
final class RolloutEndToEndTests: XCTestCase {
    private var redis: RedisServer!
    private var harness: GatewayHarness!

    override func setUpWithError() throws {
        redis = try RedisServer()
    }

    override func tearDownWithError() throws {
        harness?.stop()
        redis?.stop()
    }

    private func limits(_ limiters: [(name: String, limit: Int, failClosed: Bool)]) -> String {
        """
        [stores.redis]
        strategy = "redis"
        url = "${REDIS_URL}"
        socket_timeout = 5
        """
            + limiters.map { limiter in
                """

                [limiters.\(limiter.name)]
                store_id = "redis"
                algorithm = "sliding_window"
                limit = \(limiter.limit)
                window_seconds = 60
                fail_closed = \(limiter.failClosed)
                """
            }.joined()
    }

    /// The access log's JSON lines so far, once at least `count` are out.
    private func accessLog(atLeast count: Int) throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(5)
        var lines: [Substring] = []
        repeat {
            lines = harness.gateway.text.split(separator: "\n").filter { $0.hasPrefix("{\"time\"") }
            if lines.count >= count { break }
            usleep(20_000)
        } while Date() < deadline
        return try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    func testAShadowLimiterSpendsAndCountsButNeverDenies() throws {
        harness = try GatewayHarness(
            rateSync: limits([("enforced", 100, false), ("trial", 2, true)]),
            routes: """
                [[routes]]
                name = "api"
                upstream = "app"
                limiters = ["enforced"]
                shadow = ["trial"]
                """,
            environment: ["REDIS_URL": redis.url]
        )
        for _ in 0..<5 {
            let answer = try curl(["\(harness.base)/items"])
            XCTAssertEqual(answer.status, 200)
            XCTAssertEqual(answer.headers["x-ratelimit-limit"], "100", "headers come from enforced limiters only")
            XCTAssertFalse(answer.headers["ratelimit-policy"]?.contains("trial") ?? true)
        }
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:trial:127.0.0.1:window"]), "2", "spent as if enforced")
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:enforced:127.0.0.1:window"]), "5")
        let series = ["route": "api", "limiter": "trial"]
        XCTAssertEqual(try harness.metric("ratesync_decisions_total", series.merging(["outcome": "shadow_denied"]) { $1 }), 3)
        XCTAssertEqual(try harness.metric("ratesync_decisions_total", series.merging(["outcome": "allowed"]) { $1 }), 2)
        let entries = try accessLog(atLeast: 5)
        XCTAssertEqual(entries.count, 5)
        XCTAssertEqual(entries.filter { ($0["shadow_denied"] as? [String]) == ["trial"] }.count, 3)
        XCTAssertTrue(entries.allSatisfy { $0["outcome"] as? String == "allowed" })

        // Enforcing it is a reload.
        let config = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        try config.replacingOccurrences(of: "limiters = [\"enforced\"]\nshadow = [\"trial\"]", with: "limiters = [\"enforced\", \"trial\"]")
            .write(toFile: harness.configPath, atomically: true, encoding: .utf8)
        try harness.reload()
        let enforced = try curl(["\(harness.base)/items"])
        XCTAssertEqual(enforced.status, 429)
        XCTAssertEqual(enforced.headers["x-ratelimit-limit"], "2")
    }

    func testARouteOfCostFiveAdmitsAFifthOfTheLimit() throws {
        harness = try GatewayHarness(
            rateSync: limits([("window", 10, false)]),
            routes: """
                [[routes]]
                name = "export"
                path_prefix = "/export"
                upstream = "app"
                limiters = ["window"]
                cost = 5
                [[routes]]
                name = "cheap"
                upstream = "app"
                limiters = ["window"]
                """,
            environment: ["REDIS_URL": redis.url]
        )
        let first = try curl(["\(harness.base)/export"])
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.headers["x-ratelimit-remaining"], "5")
        XCTAssertEqual(try curl(["-o", "/dev/null", "\(harness.base)/export"]).status, 200)
        let third = try curl(["\(harness.base)/export"])
        XCTAssertEqual(third.status, 429)
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:window:127.0.0.1:window"]), "10", "each request spent five admissions")
        XCTAssertEqual(try curl(["-o", "/dev/null", "\(harness.base)/cheap"]).status, 429, "the budget is shared with cost-1 routes")
    }

    func testWhileRedisIsDownAnAuthRouteIsLimitedLocallyAndTheSharedStoreDecidesAgainAfter() throws {
        harness = try GatewayHarness(
            rateSync: limits([("auth", 5, true)]),
            routes: """
                [[routes]]
                name = "auth"
                upstream = "app"
                limiters = ["auth"]
                identifier = "header:X-User"
                """,
            gatewayExtras: """
                [stores.redis]
                command_timeout_ms = 100
                on_failure = "local"
                local_divisor = 1
                circuit_breaker = { threshold = 2, timeout = 1 }
                """,
            environment: ["REDIS_URL": redis.url]
        )
        let base = harness.base
        func attempt(_ user: String) throws -> HTTPAnswer { try curl(["\(base)/login", "-H", "X-User: \(user)"]) }
        XCTAssertEqual(try attempt("early").status, 200)

        // Other clients keep the gateway busy throughout.
        let load = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-s", "--max-time", "5", "--rate", "40/s", "-H", "X-User: background", "-w", "%{http_code}\\n"]
                + (0..<160).flatMap { _ in ["-o", "/dev/null", "\(base)/login"] }
        )
        let port = redis.port
        kill(redis.process.pid, SIGKILL)

        // Until the breaker opens, failures get the fail policy; once open, local limits decide.
        var failedClosed = 0
        var firstLocal: HTTPAnswer?
        let deadline = Date().addingTimeInterval(5)
        while firstLocal == nil && Date() < deadline {
            let answer = try attempt("probe")
            if answer.status == 503 { failedClosed += 1 } else { firstLocal = answer }
        }
        let local = try XCTUnwrap(firstLocal, "the breaker opened and local limits took over")
        XCTAssertEqual(local.status, 200)
        XCTAssertEqual(local.headers["ratelimit-policy"], "\"auth\";q=5;w=60", "the local limit (5 / divisor 1)")
        var statuses = [local.status]
        for _ in 0..<6 { statuses.append(try attempt("probe").status) }
        XCTAssertEqual(statuses, [200, 200, 200, 200, 200, 429, 429], "its limit per window, then denials: not 503 for everyone")
        let denied = try attempt("probe")
        XCTAssertEqual(denied.status, 429)
        XCTAssertNotNil(denied.headers["retry-after"])
        XCTAssertEqual(try attempt("someone-else").status, 200, "each identifier has its own local budget")
        let entries = try accessLog(atLeast: 1)
        XCTAssertTrue(entries.contains { $0["decided_by"] as? String == "local" && $0["status"] as? Int == 429 })

        // Redis back: the breaker's probe succeeds and the shared store decides again.
        redis = try RedisServer(port: port)
        let recovery = Date().addingTimeInterval(10)
        var shared = false
        while !shared && Date() < recovery {
            _ = try attempt("fresh")
            shared = (try? redis.cli(["EXISTS", "rate_limit:auth:fresh:window"])) == "1"
            if !shared { usleep(100_000) }
        }
        XCTAssertTrue(shared, "the shared store decides again")
        let results = try load.waitForExit(timeout: 30)
        XCTAssertEqual(results, 0)
        XCTAssertFalse(load.text.split(separator: "\n").contains("000"), "every background request was answered")
    }
}
