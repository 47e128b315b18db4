import Foundation
import TestSupport
import XCTest

/// The gateway on rate-sync's Postgres engine: limits decided in PostgreSQL (a real server
/// started for each test), budgets shared with the real Python rate-sync both ways, and the
/// same fail policies as Redis when the database is gone.
final class PostgresEndToEndTests: XCTestCase {
    private var postgres: PostgresServer!
    private var harness: GatewayHarness!

    override func setUpWithError() throws {
        postgres = try PostgresServer()
        harness = try GatewayHarness(
            rateSync: """
                [stores.pg]
                engine = "postgres"
                url = "${PG_URL}"
                auto_create = true
                pool_max_size = 4
                [limiters.login]
                store = "pg"
                algorithm = "sliding_window"
                limit = 6
                window_seconds = 300
                fail_closed = true
                [limiters.api]
                store = "pg"
                rate_per_second = 0.01
                [limiters.exports]
                store = "pg"
                max_concurrent = 1
                """,
            routes: """
                [[routes]]
                name = "login"
                path_prefix = "/login"
                upstream = "app"
                limiters = ["login"]
                [[routes]]
                name = "exports"
                path_prefix = "/slow"
                upstream = "app"
                limiters = ["exports"]
                [[routes]]
                name = "api"
                upstream = "app"
                limiters = ["api"]
                """,
            server: #"trusted_proxies = ["127.0.0.1"]"#,
            environment: ["PG_URL": postgres.url]
        )
    }

    override func tearDownWithError() throws {
        harness?.stop()
        postgres?.stop()
    }

    private func status(_ path: String, client: String) throws -> Int {
        try curl(["-o", "/dev/null", "-H", "X-Forwarded-For: \(client)", "\(harness.base)\(path)"]).status
    }

    func testLimitsAreDecidedInRateSyncsTables() throws {
        let statuses = try (0..<7).map { _ in try status("/login", client: "192.0.2.1") }
        XCTAssertEqual(statuses, Array(repeating: 200, count: 6) + [429])
        let denied = try curl(["-H", "X-Forwarded-For: 192.0.2.1", "\(harness.base)/login"])
        XCTAssertEqual(denied.headers["x-ratelimit-limit"], "6")
        XCTAssertEqual(Int(denied.headers["retry-after"] ?? ""), 300, "the first of six admissions leaves the window in 300 s")
        XCTAssertEqual(try postgres.sql("SELECT count(*) FROM rate_limiter_state_window WHERE group_id = 'login:192.0.2.1'"), "6")
        XCTAssertEqual(try status("/api", client: "192.0.2.1"), 200)
        XCTAssertEqual(try status("/api", client: "192.0.2.1"), 429, "one per 100 s")
        let health = try curl(["\(harness.admin)/health/rate-limiter"])
        XCTAssertEqual(health.status, 200, health.text)
        XCTAssertTrue(health.text.contains("postgres"), health.text)
    }

    func testSharesBudgetsWithThePythonRateSyncPostgresEngineBothWays() throws {
        guard let python = ProcessInfo.processInfo.environment["RATESYNC_PYTHON"] else {
            throw XCTSkip("RATESYNC_PYTHON is not set: scripts/test.sh sets it up with rate-sync 0.4.2 and asyncpg")
        }
        func pythonAcquires(_ limiter: String, _ identifier: String, _ attempts: Int, _ options: [String]) throws -> Int {
            let result = try runProgram(
                python,
                [interopScript("ratesync_postgres_client.py"), postgres.url, limiter, identifier, String(attempts)] + options,
                stdoutOnly: true
            )
            guard let admitted = Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw HarnessError("rate-sync client failed: \(result.output)")
            }
            return admitted
        }
        let window = ["limit=6", "window_seconds=300"]
        // Sliding window, Python first: its 4 leave the gateway 2 of 6; gateway first: its 5 leave Python 1.
        XCTAssertEqual(try pythonAcquires("login", "198.51.100.1", 4, window), 4)
        XCTAssertEqual(try (0..<4).map { _ in try status("/login", client: "198.51.100.1") }, [200, 200, 429, 429])
        for _ in 0..<5 { XCTAssertEqual(try status("/login", client: "198.51.100.2"), 200) }
        XCTAssertEqual(try pythonAcquires("login", "198.51.100.2", 3, window), 1)

        // Token bucket (one per 100 s): whoever goes first takes the slot.
        XCTAssertEqual(try pythonAcquires("api", "198.51.100.3", 2, ["rate_per_second=0.01"]), 1)
        XCTAssertEqual(try status("/api", client: "198.51.100.3"), 429)
        XCTAssertEqual(try status("/api", client: "198.51.100.4"), 200)
        XCTAssertEqual(try pythonAcquires("api", "198.51.100.4", 2, ["rate_per_second=0.01"]), 0)

        // max_concurrent: a slot the gateway holds is Python's to wait for, and the reverse.
        let held = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-s", "-o", "/dev/null", "-H", "X-Forwarded-For: 198.51.100.5", "--max-time", "20", "\(harness.base)/slow?delay_ms=3000"]
        )
        _ = try waitUntil("the gateway holds the slot", timeout: 5) {
            try postgres.sql("SELECT concurrent_count FROM rate_limiter_state WHERE group_id = 'exports:198.51.100.5'") == "1"
        }
        XCTAssertEqual(try pythonAcquires("exports", "198.51.100.5", 1, ["max_concurrent=1", "release=1"]), 0)
        _ = try held.waitForExit(timeout: 10)
        _ = try waitUntil("the gateway gives the slot back", timeout: 5) {
            try postgres.sql("SELECT concurrent_count FROM rate_limiter_state WHERE group_id = 'exports:198.51.100.5'") == "0"
        }
        XCTAssertEqual(try pythonAcquires("exports", "198.51.100.5", 1, ["max_concurrent=1"]), 1, "Python takes it and keeps it")
        XCTAssertEqual(try status("/slow?delay_ms=1", client: "198.51.100.5"), 429, "held by Python")
    }

    func testWithPostgresGoneFailOpenLimitersAdmitAndFailClosedOnesAnswer503() throws {
        XCTAssertEqual(try status("/api", client: "203.0.113.9"), 200)
        postgres.stop()
        XCTAssertEqual(try status("/api", client: "203.0.113.9"), 200, "api fails open")
        let started = Date()
        XCTAssertEqual(try status("/login", client: "203.0.113.9"), 503, "login fails closed")
        XCTAssertLessThan(Date().timeIntervalSince(started), 2, "within the command deadline, not a hang")
        let health = try curl(["\(harness.admin)/health/rate-limiter"])
        XCTAssertEqual(health.status, 503, health.text)
    }
}
