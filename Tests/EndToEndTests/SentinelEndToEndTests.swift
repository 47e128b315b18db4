import Foundation
import TestSupport
import XCTest

/// A Sentinel-managed Redis (one primary, two replicas, three sentinels), a real failover under
/// load, and the gateway following it.
final class SentinelEndToEndTests: XCTestCase {
    private var servers: [RedisServer] = []
    private var sentinels: [RedisSentinel] = []
    private var harness: GatewayHarness!

    override func tearDownWithError() throws {
        harness?.stop()
        sentinels.forEach { $0.stop() }
        servers.forEach { $0.stop() }
    }

    func testTheGatewayFollowsAFailoverAndLimitsStayExact() throws {
        let primary = try RedisServer()
        servers = [primary]
        for _ in 0..<2 {
            servers.append(try RedisServer(extraArguments: ["--replicaof", "127.0.0.1", String(primary.port)]))
        }
        try waitUntil("both replicas are in sync", timeout: 20) {
            try primary.cli(["INFO", "replication"]).contains("connected_slaves:2")
                && servers.dropFirst().allSatisfy { (try? $0.cli(["INFO", "replication"]).contains("master_link_status:up")) ?? false }
        }
        sentinels = try (0..<3).map { _ in try RedisSentinel(monitoring: primary.port) }
        try waitUntil("every sentinel knows both replicas and the other sentinels", timeout: 20) {
            try sentinels.allSatisfy { try $0.masterField("num-slaves") == "2" && $0.masterField("num-other-sentinels") == "2" }
        }

        harness = try GatewayHarness(
            rateSync: """
                [stores.redis]
                engine = "redis"
                mode = "sentinel"
                sentinels = [\(sentinels.map { "\"127.0.0.1:\($0.port)\"" }.joined(separator: ", "))]
                master_name = "mymaster"
                socket_timeout = 2
                [limiters.per_user]
                store = "redis"
                algorithm = "sliding_window"
                limit = 5
                window_seconds = 60
                [limiters.bulk]
                store = "redis"
                algorithm = "sliding_window"
                limit = 1000000
                window_seconds = 60
                """,
            routes: """
                [[routes]]
                name = "bulk"
                path_prefix = "/bulk"
                upstream = "app"
                limiters = ["bulk"]
                [[routes]]
                name = "user"
                upstream = "app"
                limiters = ["per_user"]
                identifier = "header:X-User"
                """,
            gatewayExtras: """
                [stores.redis]
                command_timeout_ms = 200
                circuit_breaker = { threshold = 1000, timeout = 1 }
                """
        )
        let base = harness.base
        func status(_ user: String) throws -> Int {
            try curl(["-o", "/dev/null", "\(base)/login", "-H", "X-User: \(user)"]).status
        }
        let health = try curl(["\(harness.admin)/health/rate-limiter"]).text
        XCTAssertTrue(health.contains("\"primary\":\"127.0.0.1:\(primary.port)\""), health)

        // Spent exactly, with no denial (so no gateway holds a cached one), and replicated.
        let first = try curl(["\(base)/login", "-H", "X-User: before"])
        XCTAssertEqual(first.status, 200, first.text)
        for _ in 0..<4 { XCTAssertEqual(try status("before"), 200) }
        XCTAssertEqual(try primary.cli(["WAIT", "2", "2000"]), "2")

        let load = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-s", "--max-time", "5", "--rate", "40/s", "-w", "%{http_code}\\n"]
                + (0..<240).flatMap { _ in ["-o", "/dev/null", "\(base)/bulk"] }
        )
        Thread.sleep(forTimeInterval: 1)
        XCTAssertEqual(try sentinels[0].cli(["SENTINEL", "FAILOVER", "mymaster"]), "OK")
        var promotedPort: Int?
        try waitUntil("a sentinel names the promoted replica", timeout: 20) {
            if let port = try sentinels.lazy.compactMap({ try $0.primaryPort() }).first(where: { $0 != primary.port }) {
                promotedPort = port
                return true
            }
            return false
        }
        let switched = Date()
        let promoted = try XCTUnwrap(servers.first { $0.port == promotedPort })

        // Fresh identifiers until one is decided by the promoted primary.
        var attempt = 0
        try waitUntil("the gateway writes to the promoted primary", timeout: 10) {
            attempt += 1
            _ = try status("probe-\(attempt)")
            return try promoted.cli(["EXISTS", "rate_limit:per_user:probe-\(attempt):window"]) == "1"
        }
        let followed = Date().timeIntervalSince(switched)
        print("the gateway followed the failover \(followed) s after a sentinel named the new primary")
        XCTAssertLessThan(followed, 3, "followed \(followed) s after the switch")
        let health2 = try curl(["\(harness.admin)/health/rate-limiter"]).text
        XCTAssertTrue(health2.contains("\"primary\":\"127.0.0.1:\(promoted.port)\""), health2)

        XCTAssertEqual(try status("before"), 429, "exhausted before the failover, still exhausted after")
        XCTAssertEqual(try (0..<7).map { _ in try status("after") }, [200, 200, 200, 200, 200, 429, 429], "a fresh one gets exactly its limit")

        XCTAssertEqual(try load.waitForExit(timeout: 30), 0)
        let statuses = load.text.split(separator: "\n")
        XCTAssertEqual(statuses.count, 240)
        XCTAssertTrue(statuses.allSatisfy { $0 == "200" }, "every request answered (fail-open while switching): \(Set(statuses))")
    }
}
