import Foundation
import TestSupport
import XCTest

/// The production deployment's fail-safe strategies and circuit breaker, made real: Redis killed, hung, or
/// answering errors while a real client keeps sending, and every request gets an answer.
final class FailureEndToEndTests: XCTestCase {
    private var redis: RedisServer!
    private var harness: GatewayHarness!

    override func setUpWithError() throws {
        redis = try RedisServer()
    }

    override func tearDownWithError() throws {
        harness?.stop()
        redis?.stop()
    }

    private func startGateway(extraArguments: [String] = []) throws {
        harness = try GatewayHarness(
            rateSync: """
                [stores.redis]
                strategy = "redis"
                url = "${REDIS_URL}"
                max_connections = 50
                socket_timeout = 5
                [limiters.public]
                store_id = "redis"
                algorithm = "token_bucket"
                rate_per_second = 10000
                fail_closed = false
                [limiters.auth]
                store_id = "redis"
                algorithm = "sliding_window"
                limit = 100000
                window_seconds = 300
                fail_closed = true
                """,
            routes: GatewayHarness.deploymentRoutes,
            gatewayExtras: """
                [circuit_breaker]
                threshold = 5
                timeout = 60
                [stores.redis]
                command_timeout_ms = 100
                circuit_breaker = { threshold = 3, timeout = 1 }
                """,
            environment: ["REDIS_URL": redis.url],
            gatewayArguments: extraArguments
        )
    }

    /// A real client sending `count` requests at `perSecond`, one connection, recording for
    /// each request its status ("000" when no answer came) and its duration.
    private final class SteadyLoad {
        let process: ChildProcess
        init(url: String, count: Int, perSecond: Int, method: String = "GET") throws {
            let transfers = (0..<count).flatMap { _ in ["-o", "/dev/null", url] }
            process = try ChildProcess(
                URL(fileURLWithPath: "/usr/bin/curl"),
                ["-s", "-X", method, "--max-time", "5", "--rate", "\(perSecond)/s", "-w", "%{http_code} %{time_total}\\n"] + transfers
            )
        }

        func results() throws -> [(status: String, seconds: Double)] {
            _ = try process.waitForExit(timeout: 60)
            return process.text.split(separator: "\n").compactMap { line in
                let parts = line.split(separator: " ")
                guard parts.count == 2, let seconds = Double(parts[1]) else { return nil }
                return (String(parts[0]), seconds)
            }
        }
    }

    func testRedisKilledMidLoadThenRestarted() throws {
        try startGateway()
        let publicLoad = try SteadyLoad(url: "\(harness.base)/products", count: 240, perSecond: 30)
        let authLoad = try SteadyLoad(url: "\(harness.base)/auth/login", count: 240, perSecond: 30, method: "POST")
        Thread.sleep(forTimeInterval: 1)
        let port = redis.port
        kill(redis.process.pid, SIGKILL)
        Thread.sleep(forTimeInterval: 0.8)
        let during = try curl(["-X", "POST", "\(harness.base)/auth/login"])
        XCTAssertEqual(during.status, 503)
        XCTAssertNotNil(during.headers["retry-after"])
        XCTAssertEqual(((try during.json())["detail"] as? [[String: Any]])?.first?["type"] as? String, "rate_limiter_unavailable")
        Thread.sleep(forTimeInterval: 0.7)
        redis = try RedisServer(port: port)

        let publicResults = try publicLoad.results()
        let authResults = try authLoad.results()
        XCTAssertEqual(publicResults.count, 240, "every request answered")
        XCTAssertEqual(authResults.count, 240, "every request answered")
        XCTAssertTrue(publicResults.allSatisfy { $0.status == "200" }, "public fails open: \(Set(publicResults.map(\.status)))")
        XCTAssertFalse(authResults.contains { $0.status == "000" })
        XCTAssertTrue(authResults.contains { $0.status == "503" }, "auth fails closed")
        XCTAssertTrue(authResults.suffix(20).allSatisfy { $0.status == "200" }, "recovered: \(authResults.suffix(20).map(\.status))")
        // Limits are enforced again: the restarted Redis holds the window of the admissions since.
        XCTAssertGreaterThan(Int(try redis.cli(["ZCARD", "rate_limit:auth:127.0.0.1:window"])) ?? 0, 0)
    }

    func testRedisHungAnswersWithinTheDeadlineAndStopsTouchingIt() throws {
        try startGateway()
        let publicLoad = try SteadyLoad(url: "\(harness.base)/products", count: 150, perSecond: 30)
        let authLoad = try SteadyLoad(url: "\(harness.base)/auth/login", count: 150, perSecond: 30, method: "POST")
        Thread.sleep(forTimeInterval: 1)
        redis.pause()
        Thread.sleep(forTimeInterval: 2.5)
        redis.resume()
        let publicResults = try publicLoad.results()
        let authResults = try authLoad.results()
        XCTAssertEqual(publicResults.count + authResults.count, 300, "every request answered")
        XCTAssertTrue(publicResults.allSatisfy { $0.status == "200" })
        XCTAssertTrue(authResults.contains { $0.status == "503" })
        let slowest = (publicResults + authResults).map(\.seconds).max() ?? 0
        XCTAssertLessThan(slowest, 1.0, "nobody waits on a hung Redis beyond the 100 ms deadline plus scheduling")
        // Only requests that reached Redis wait for the deadline: the ones before the breaker
        // opened (3) and the probes (about one per second open). The rest are answered at once.
        let waited = (publicResults + authResults).filter { $0.seconds >= 0.09 }.count
        XCTAssertLessThanOrEqual(waited, 15, "requests that waited on Redis: \(waited)")
    }

    func testRedisAnsweringErrorsIsAFailureWithTheSamePolicies() throws {
        try startGateway()
        XCTAssertEqual(try curl(["-X", "POST", "\(harness.base)/auth/login"]).status, 200)
        // Out of memory with noeviction: every script write is refused.
        try redis.cli(["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        try redis.cli(["CONFIG", "SET", "maxmemory", "1"])
        XCTAssertEqual(try curl(["\(harness.base)/products"]).status, 200)
        XCTAssertEqual(try curl(["-X", "POST", "\(harness.base)/auth/login"]).status, 503)
        try redis.cli(["CONFIG", "SET", "maxmemory", "0"])

        // A new password after a "restart": the gateway's reconnect is refused.
        Thread.sleep(forTimeInterval: 1.2)
        XCTAssertEqual(try curl(["-X", "POST", "\(harness.base)/auth/login"]).status, 200, "recovered after the breaker's timeout")
        try redis.cli(["CONFIG", "SET", "requirepass", "rotated"])
        try redis.cli(["CLIENT", "KILL", "TYPE", "normal"], password: "rotated")
        Thread.sleep(forTimeInterval: 0.2)
        for _ in 0..<5 {
            XCTAssertEqual(try curl(["\(harness.base)/products"]).status, 200)
            XCTAssertEqual(try curl(["-X", "POST", "\(harness.base)/auth/login"]).status, 503)
        }
        let health = try curl(["\(harness.admin)/health/rate-limiter"])
        XCTAssertEqual(health.status, 503)
        XCTAssertTrue(health.text.contains("authentication failed") || health.text.contains("NOAUTH"), health.text)
        XCTAssertFalse(health.text.contains("rotated"))
    }

    func testHealthFlipsWithinTheDeadlineAndBack() throws {
        try startGateway()
        XCTAssertEqual(try curl(["\(harness.admin)/health/rate-limiter"]).status, 200)
        redis.pause()
        let started = Date()
        let down = try curl(["\(harness.admin)/health/rate-limiter"])
        XCTAssertEqual(down.status, 503)
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "the probe is bounded by the command deadline")
        let json = try down.json()
        XCTAssertEqual(json["status"] as? String, "unhealthy")
        XCTAssertNotNil(json["error"] as? String)
        XCTAssertNotNil((json["stores"] as? [String: [String: Any]])?["redis"]?["breaker"])
        redis.resume()
        let recovered = (0..<60).contains { _ in
            Thread.sleep(forTimeInterval: 0.1)
            return (try? curl(["\(harness.admin)/health/rate-limiter"]).status) == 200
        }
        XCTAssertTrue(recovered)
    }

    func testDegradedStartServesWithThePolicies() throws {
        let port = redis.port
        redis.stop()
        redis = nil
        harness = try GatewayHarness(
            rateSync: GatewayHarness.deploymentLimiters.replacingOccurrences(
                of: "[stores.local]\nstrategy = \"memory\"",
                with: "[stores.local]\nstrategy = \"redis\"\nurl = \"redis://127.0.0.1:\(port)/0\""
            ),
            routes: GatewayHarness.deploymentRoutes,
            gatewayArguments: ["--allow-degraded-start"]
        )
        XCTAssertEqual(try curl(["\(harness.base)/products"]).status, 200)
        XCTAssertEqual(try curl(["-X", "POST", "\(harness.base)/auth/login"]).status, 503)
        XCTAssertEqual(try curl(["\(harness.admin)/health/rate-limiter"]).status, 503)
        XCTAssertTrue(harness.gateway.text.contains("starting degraded"), harness.gateway.text)
    }
}
