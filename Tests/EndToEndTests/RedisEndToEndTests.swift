import Foundation
import TestSupport
import XCTest

/// The gateway on a real Redis: limits shared exactly by several gateway processes, one round
/// trip per request, and budgets shared with the real Python rate-sync library.
final class RedisEndToEndTests: XCTestCase {
    private var redis: RedisServer!

    override func setUpWithError() throws {
        redis = try RedisServer()
    }

    override func tearDownWithError() throws {
        redis.stop()
    }

    private func rateSync(_ limiters: String) -> String {
        """
        [stores.redis]
        strategy = "redis"
        url = "${REDIS_URL}"
        max_connections = 50
        socket_timeout = 5
        \(limiters)
        """
    }

    private let globalRoute = """
        [[routes]]
        name = "all"
        upstream = "app"
        limiters = ["shared"]
        identifier = "global"
        """

    /// A key that holds something else (here a string where a sorted set belongs, so Redis
    /// answers WRONGTYPE) fails its own identity's requests only: requests batched into the same
    /// script call are decided as usual, and the breaker, which counts the store's health, stays
    /// closed.
    func testAForeignKeyFailsOnlyItsOwnIdentity() throws {
        let harness = try GatewayHarness(
            rateSync: rateSync(
                """
                [limiters.auth]
                store_id = "redis"
                algorithm = "sliding_window"
                limit = 1000
                window_seconds = 300
                fail_closed = true
                """
            ),
            routes: """
                [[routes]]
                name = "auth"
                upstream = "app"
                limiters = ["auth"]
                identifier = "header:X-User"
                """,
            gatewayExtras: """
                [circuit_breaker]
                threshold = 3
                timeout = 60
                """,
            environment: ["REDIS_URL": redis.url]
        )
        defer { harness.stop() }
        XCTAssertEqual(try redis.cli(["SET", "rate_limit:auth:victim:window", "not a sorted set"]), "OK")
        for round in 0..<3 {
            // Both identities at once, so that their checks share script calls.
            let clients = try (0..<8).map { index in
                try ChildProcess(
                    URL(fileURLWithPath: "/usr/bin/curl"),
                    ["-s", "-w", "%{http_code}\n", "-H", "X-User: \(index % 2 == 0 ? "victim" : "alice-\(round)")"]
                        + (0..<3).flatMap { _ in ["-o", "/dev/null", "\(harness.base)/login"] }
                )
            }
            for (index, client) in clients.enumerated() {
                XCTAssertEqual(try client.waitForExit(), 0)
                let codes = client.text.split(separator: "\n").map(String.init)
                XCTAssertEqual(codes, Array(repeating: index % 2 == 0 ? "503" : "200", count: 3), "round \(round), client \(index)")
            }
        }
        let health = try curl(["\(harness.admin)/health/rate-limiter"])
        XCTAssertEqual(health.status, 200, health.text)
        XCTAssertTrue(health.text.contains("\"breaker\":\"closed\""), health.text)
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:auth:alice-0:window"]), "12")
    }

    func testARouteMixingAMemoryAndARedisLimiterIsDecidedByBoth() throws {
        // The memory limiter is listed first: its in-process answer must not be taken (and its
        // budget spent) before the Redis limiter is asked over the network.
        let harness = try GatewayHarness(
            rateSync: rateSync(
                """
                [stores.local]
                engine = "memory"
                [limiters.local]
                store = "local"
                algorithm = "sliding_window"
                limit = 5
                window_seconds = 300
                [limiters.shared]
                store_id = "redis"
                algorithm = "sliding_window"
                limit = 3
                window_seconds = 300
                """
            ),
            routes: """
                [[routes]]
                name = "mixed"
                upstream = "app"
                limiters = ["local", "shared"]
                identifier = "global"
                """,
            environment: ["REDIS_URL": redis.url]
        )
        defer { harness.stop() }
        let statuses = try (0..<6).map { _ in try curl(["\(harness.base)/x"]).status }
        XCTAssertEqual(statuses, [200, 200, 200, 429, 429, 429], "the tighter Redis limit decides")
        let denied = try curl(["\(harness.base)/x"])
        XCTAssertEqual(denied.headers["x-ratelimit-limit"], "3")
    }

    func testAReloadThatFailsLeavesNoStoreConnectedBehind() throws {
        let harness = try GatewayHarness(
            rateSync: GatewayHarness.memoryWindow("first", limit: 100) + """

                [limiters.second]
                store = "m"
                rate_per_second = 100
                """,
            routes: GatewayHarness.catchAllRoute(limiters: ["first", "second"])
        )
        defer { harness.stop() }
        func connectedClients() throws -> Int {
            // CLIENT LIST names every connection, redis-cli's own included.
            try redis.cli(["CLIENT", "LIST"]).split(whereSeparator: \.isNewline).count - 1
        }
        XCTAssertEqual(try connectedClients(), 0)
        // Two new Redis stores: the first (by id) answers, the second cannot be reached, so the
        // reload fails after the first has connected.
        try """
            [stores.a_reachable]
            engine = "redis"
            url = "\(redis.url)"
            [stores.b_unreachable]
            engine = "redis"
            url = "redis://127.0.0.1:\(try unusedPort())/0"
            [limiters.first]
            store = "a_reachable"
            rate_per_second = 100
            [limiters.second]
            store = "b_unreachable"
            rate_per_second = 100
            """.write(toFile: harness.rateSyncPath, atomically: true, encoding: .utf8)
        kill(harness.gateway.pid, SIGHUP)
        var failures: Double?
        for _ in 0..<50 where failures == nil {
            Thread.sleep(forTimeInterval: 0.1)
            failures = try harness.metric("ratesync_config_reloads_total", ["result": "failure"])
        }
        XCTAssertEqual(failures, 1, harness.gateway.text)
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(try connectedClients(), 0, "the store the failed reload made is stopped")
        XCTAssertEqual(try curl(["\(harness.base)/x"]).status, 200, "the running configuration stays")
    }

    func testThreeGatewaysShareOneSlidingWindowExactly() throws {
        let harness = try GatewayHarness(
            rateSync: rateSync(
                """
                [limiters.shared]
                store_id = "redis"
                algorithm = "sliding_window"
                limit = 10
                window_seconds = 300
                fail_closed = true
                """
            ),
            routes: globalRoute,
            environment: ["REDIS_URL": redis.url]
        )
        defer { harness.stop() }
        let ports = [harness.proxyPort, try harness.startAnotherGateway(), try harness.startAnotherGateway()]
        // 60 requests at once, spread over the three gateways.
        let transfers = (0..<60).flatMap { i in ["-o", "/dev/null", "http://127.0.0.1:\(ports[i % 3])/x"] }
        let result = try runProgram(
            "/usr/bin/curl",
            ["-s", "--parallel", "--parallel-max", "30", "-w", "%{http_code}\\n"] + transfers,
            stdoutOnly: true
        )
        let codes = result.output.split(separator: "\n")
        XCTAssertEqual(codes.count, 60)
        XCTAssertEqual(codes.filter { $0 == "200" }.count, 10, "exactly the limit across all instances")
        XCTAssertEqual(codes.filter { $0 == "429" }.count, 50)
    }

    func testThreeGatewaysShareOneTokenBucketUnderSaturatingLoad() throws {
        let rate = 50.0
        let burst = 20
        let seconds = 4.0
        let harness = try GatewayHarness(
            rateSync: rateSync(
                """
                [limiters.shared]
                store_id = "redis"
                rate_per_second = \(rate)
                burst = \(burst)
                """
            ),
            routes: globalRoute,
            environment: ["REDIS_URL": redis.url]
        )
        defer { harness.stop() }
        let ports = [harness.proxyPort, try harness.startAnotherGateway(), try harness.startAnotherGateway()]
        // One wrk per gateway, all at once, each saturating its instance.
        let started = Date()
        let loads = try ports.map { port in
            try ChildProcess(URL(fileURLWithPath: "/usr/bin/wrk"), ["-t1", "-c8", "-d\(Int(seconds))s", "http://127.0.0.1:\(port)/x"])
        }
        var admitted = 0
        for load in loads {
            XCTAssertEqual(try load.waitForExit(timeout: seconds + 20), 0)
            let summary = WrkSummary(output: load.text)
            let (total, refused) = (summary.requests, summary.non2xx)
            XCTAssertGreaterThan(refused, 0, "the load saturates the limit")
            admitted += total - refused
        }
        // The three loads start one after another and each runs its own 4 s, so the window in
        // which requests arrived is longer than 4 s by the launch skew (tens of milliseconds, more
        // on a loaded machine): the exact ceiling is the burst plus the rate over the time that
        // really passed, plus one emission interval for where the bucket's clock starts.
        let elapsed = Date().timeIntervalSince(started)
        let expected = Double(burst) + rate * seconds
        XCTAssertGreaterThanOrEqual(Double(admitted), 0.95 * expected, "admitted \(admitted) of \(expected)")
        let ceiling = Double(burst) + rate * elapsed + 1
        XCTAssertLessThanOrEqual(Double(admitted), ceiling, "admitted \(admitted), at most \(ceiling) in \(elapsed) s")
        // Three unshared buckets would admit three times as much: the budget really is shared.
        XCTAssertLessThan(Double(admitted), 1.5 * expected)
    }

    func testOneRedisRoundTripPerRequestWhateverTheNumberOfLimiters() throws {
        let harness = try GatewayHarness(
            rateSync: rateSync(
                """
                [limiters.per_second]
                store_id = "redis"
                rate_per_second = 1000
                [limiters.per_hour]
                store_id = "redis"
                algorithm = "sliding_window"
                limit = 1000
                window_seconds = 3600
                """
            ),
            routes: """
                [[routes]]
                name = "layered"
                upstream = "app"
                limiters = ["per_second", "per_hour"]
                """,
            environment: ["REDIS_URL": redis.url]
        )
        defer { harness.stop() }
        let before = try redis.calls(of: "evalsha") + redis.calls(of: "eval")
        let requests = 25
        for _ in 0..<requests { XCTAssertEqual(try curl(["\(harness.base)/x"]).status, 200) }
        let scripts = try redis.calls(of: "evalsha") + redis.calls(of: "eval") - before
        XCTAssertEqual(scripts, requests, "one script call decides both limiters")
    }

    func testSharesBudgetsWithThePythonRateSyncLibraryBothWays() throws {
        guard let python = ProcessInfo.processInfo.environment["RATESYNC_PYTHON"] else {
            throw XCTSkip("RATESYNC_PYTHON is not set: scripts/test.sh sets it up with rate-sync 0.4.2")
        }
        // rate-sync's own spellings (engine, store, pool_max_size): the library rejects the
        // deployment guide's strategy/store_id, and the gateway reads both.
        let limiters = """
            [stores.redis]
            engine = "redis"
            url = "${REDIS_URL}"
            pool_max_size = 10
            [limiters.auth]
            store = "redis"
            algorithm = "sliding_window"
            limit = 6
            window_seconds = 300
            [limiters.public]
            store = "redis"
            algorithm = "token_bucket"
            rate_per_second = 0.01
            [limiters.exports]
            store = "redis"
            max_concurrent = 1
            """
        let harness = try GatewayHarness(
            rateSync: limiters,
            routes: """
                [[routes]]
                name = "exports"
                path_prefix = "/slow"
                upstream = "app"
                limiters = ["exports"]
                """ + "\n" + DeploymentFixtures.routes,
            server: #"trusted_proxies = ["127.0.0.1"]"#,
            environment: ["REDIS_URL": redis.url]
        )
        defer { harness.stop() }
        let config = harness.directory.appendingPathComponent("rate-sync.toml").path
        let client = interopScript("ratesync_client.py")
        func pythonAcquires(_ limiter: String, _ identifier: String, _ attempts: Int, releasing: Bool = false) throws -> Int {
            let result = try runProgram(
                python,
                [client, config, limiter, identifier, String(attempts)] + (releasing ? ["release"] : []),
                environment: ["REDIS_URL": redis.url],
                stdoutOnly: true
            )
            guard let admitted = Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw HarnessError("rate-sync client failed: \(result.output)")
            }
            return admitted
        }

        // Python first: its 4 admissions leave the gateway 2 of the 6.
        XCTAssertEqual(try pythonAcquires("auth", "198.51.100.1", 4), 4)
        let gatewaySide = try (0..<4).map { _ in
            try curl(["-H", "X-Forwarded-For: 198.51.100.1", "\(harness.base)/auth/login"]).status
        }
        XCTAssertEqual(gatewaySide, [200, 200, 429, 429])
        // Gateway first: its 5 admissions leave Python 1.
        for _ in 0..<5 {
            XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.2", "\(harness.base)/auth/login"]).status, 200)
        }
        XCTAssertEqual(try pythonAcquires("auth", "198.51.100.2", 3), 1)

        // Token bucket (burst 1 is rate-sync's own spacing): one admission on either side blocks the other.
        XCTAssertEqual(try pythonAcquires("public", "198.51.100.3", 1), 1)
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.3", "\(harness.base)/p"]).status, 429)
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.4", "\(harness.base)/p"]).status, 200)
        XCTAssertEqual(try pythonAcquires("public", "198.51.100.4", 1), 0)

        // max_concurrent: a slot the gateway holds is Python's to wait for, and the reverse.
        let held = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-s", "-o", "/dev/null", "-H", "X-Forwarded-For: 198.51.100.5", "--max-time", "20", "\(harness.base)/slow?delay_ms=3000"]
        )
        _ = try waitUntil("the gateway holds the slot", timeout: 5) {
            try redis.cli(["GET", "rate_limit:exports:198.51.100.5:concurrent"]) == "1"
        }
        XCTAssertEqual(try pythonAcquires("exports", "198.51.100.5", 1, releasing: true), 0)
        _ = try held.waitForExit(timeout: 10)
        _ = try waitUntil("the gateway gives the slot back", timeout: 5) {
            try redis.cli(["GET", "rate_limit:exports:198.51.100.5:concurrent"]) == "0"
        }
        XCTAssertEqual(try pythonAcquires("exports", "198.51.100.5", 1), 1, "Python takes it and keeps it")
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.5", "\(harness.base)/slow?delay_ms=1"]).status, 429, "held by Python")
    }

    func testStartupFailsClearlyWhenRedisIsDown() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ratesync-down-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try unusedPort()
        try rateSync("[limiters.shared]\nstore_id = \"redis\"\nrate_per_second = 1\n")
            .write(to: directory.appendingPathComponent("rate-sync.toml"), atomically: true, encoding: .utf8)
        try ("[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[upstreams.app]\nurl = \"http://127.0.0.1:1\"\n" + globalRoute)
            .write(to: directory.appendingPathComponent("gateway.toml"), atomically: true, encoding: .utf8)
        let result = try runProgram(
            Binaries.gateway.path,
            ["--config", directory.appendingPathComponent("gateway.toml").path],
            environment: ["REDIS_URL": "redis://:hunter2@127.0.0.1:\(port)/0"]
        )
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("store \"redis\" (redis://:***@127.0.0.1:\(port)/0)"), result.output)
        XCTAssertTrue(result.output.lowercased().contains("connection refused"), result.output)
        XCTAssertFalse(result.output.contains("hunter2"))
    }

    func testConnectionsPerStoreNeverExceedMaxConnections() throws {
        let harness = try GatewayHarness(
            rateSync: rateSync("[limiters.shared]\nstore_id = \"redis\"\nrate_per_second = 100000\n")
                .replacingOccurrences(of: "max_connections = 50", with: "max_connections = 1"),
            routes: globalRoute,
            server: "workers = 4",
            environment: ["REDIS_URL": redis.url]
        )
        defer { harness.stop() }
        let transfers = (0..<40).flatMap { _ in ["-o", "/dev/null", "\(harness.base)/x"] }
        let result = try runProgram("/usr/bin/curl", ["-s", "--parallel", "--parallel-max", "20", "-w", "%{http_code}\\n"] + transfers, stdoutOnly: true)
        XCTAssertEqual(result.output.split(separator: "\n").filter { $0 == "200" }.count, 40)
        // CLIENT LIST shows every connection; the one redis-cli itself opens has cmd=client.
        let clients = try redis.cli(["CLIENT", "LIST"]).split(separator: "\n").filter { !$0.contains("cmd=client") }
        XCTAssertEqual(clients.count, 1, "four event loops share one connection: \(clients)")
    }
}
