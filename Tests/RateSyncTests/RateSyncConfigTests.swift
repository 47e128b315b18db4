import RateSync
import XCTest

final class RateSyncConfigTests: XCTestCase {
    private func load(_ text: String, env: [String: String] = [:]) throws -> RateSyncConfig {
        try RateSyncConfig.parse(text, file: "rate-sync.toml", environment: env)
    }

    /// The problems a bad file produces, as the operator reads them.
    private func problems(_ text: String, env: [String: String] = [:]) -> [String] {
        do {
            _ = try load(text, env: env)
            XCTFail("expected the file to be rejected")
            return []
        } catch let error as ConfigError {
            return error.problems.map(\.description)
        } catch {
            XCTFail("unexpected error \(error)")
            return []
        }
    }

    let productionConfig = """
        [stores.redis]
        strategy = "redis"
        url = "${REDIS_URL}"
        max_connections = 50
        socket_timeout = 5

        [limiters.public]
        store_id = "redis"
        algorithm = "token_bucket"
        rate_per_second = 100.0
        fail_closed = false

        [limiters.auth]
        store_id = "redis"
        algorithm = "sliding_window"
        limit = 10
        window_seconds = 300
        fail_closed = true
        """

    /// Table headers the TOML library would abort the process on are refused first.
    func testHeadersThatDoNotStartWithAKeyAreProblemsNotCrashes() {
        for header in ["[>a]", "[.a]", "[ >a]", "[\u{e9}]", "[{a]", "[+a]", "[#a]", "[[>a]]", "[[[a]]]", "[a]\n[[ .b]]"] {
            XCTAssertThrowsError(try RateSyncConfig.parse(header + "\n", file: "rate-sync.toml", environment: [:]), header) { error in
                XCTAssertTrue("\(error)".contains("a table header must start with a key"), "\(header): \(error)")
            }
        }
        // A header-looking line inside a multi-line string is text.
        XCTAssertThrowsError(try RateSyncConfig.parse("s = \"\"\"\n[>a]\n\"\"\"\n", file: "f", environment: [:])) { error in
            XCTAssertFalse("\(error)".contains("table header"), "\(error)")
        }
    }

    func testTheProductionDeploymentsConfigLoads() throws {
        let config = try load(productionConfig, env: ["REDIS_URL": "redis://:secret@redis-cluster:6379/0"])
        guard case .redis(let redis) = config.stores["redis"]?.engine else { return XCTFail("not redis") }
        XCTAssertEqual(redis.url, RedisURL(host: "redis-cluster", port: 6379, password: "secret", database: 0))
        XCTAssertEqual(redis.poolMaxSize, 50)
        XCTAssertEqual(redis.socketTimeout, 5)
        XCTAssertEqual(redis.keyPrefix, "rate_limit")
        XCTAssertEqual(config.limiters["public"]?.algorithm, .tokenBucket(TokenBucketRule(ratePerSecond: 100, burst: 100)))
        XCTAssertEqual(config.limiters["public"]?.failClosed, false)
        XCTAssertEqual(config.limiters["auth"]?.algorithm, .slidingWindow(SlidingWindowRule(limit: 10, windowSeconds: 300)))
        XCTAssertEqual(config.limiters["auth"]?.failClosed, true)
        XCTAssertEqual(config.limiters["auth"]?.storeID, "redis")
    }

    func testRateSyncsOwnSpellingsLoadToo() throws {
        let config = try load(
            """
            [stores.main]
            engine = "redis"
            url = "redis://localhost"
            pool_max_size = 7
            [limiters.api]
            store = "main"
            rate_per_second = 5
            burst = 12
            """
        )
        guard case .redis(let redis) = config.stores["main"]?.engine else { return XCTFail("not redis") }
        XCTAssertEqual(redis.poolMaxSize, 7)
        XCTAssertEqual(config.limiters["api"]?.algorithm, .tokenBucket(TokenBucketRule(ratePerSecond: 5, burst: 12)))
    }

    func testUnsetVariableWithoutDefaultNamesTheVariableAndTheFile() {
        XCTAssertEqual(
            problems(productionConfig),
            [
                "rate-sync.toml: stores.redis.url: environment variable REDIS_URL is not set and has no default "
                    + "(write ${REDIS_URL:-value} to give one)",
                "rate-sync.toml: stores.redis.url: missing required key (expected a string)",
            ]
        )
    }

    func testDefaultsAndNumberCoercion() throws {
        let text = """
            [stores.mem]
            engine = "memory"
            [limiters.api]
            store = "mem"
            rate_per_second = "${RATE:-2.5}"
            burst = "${BURST:-4}"
            fail_closed = "${FAIL_CLOSED:-false}"
            """
        XCTAssertEqual(try load(text).limiters["api"]?.algorithm, .tokenBucket(TokenBucketRule(ratePerSecond: 2.5, burst: 4)))
        let overridden = try load(text, env: ["RATE": "40", "BURST": "80", "FAIL_CLOSED": "true"])
        XCTAssertEqual(overridden.limiters["api"]?.algorithm, .tokenBucket(TokenBucketRule(ratePerSecond: 40, burst: 80)))
        XCTAssertEqual(overridden.limiters["api"]?.failClosed, true)
    }

    func testVariablesExpandInKeysToo() throws {
        let config = try load(
            """
            [stores.mem]
            engine = "memory"
            [limiters."${LIMITER_NAME:-api}"]
            store = "mem"
            rate_per_second = 1
            """,
            env: ["LIMITER_NAME": "checkout"]
        )
        XCTAssertNotNil(config.limiters["checkout"])
    }

    func testEveryProblemIsReportedWithItsPath() {
        let found = problems(
            """
            [stores.mem]
            engine = "memory"
            colour = "blue"
            [limiters.auth]
            store = "mem"
            algorithm = "sliding_window"
            limit = 10
            window_seconds = -5
            [limiters.public]
            store = "nowhere"
            rate_per_second = "fast"
            """
        )
        XCTAssertEqual(
            found,
            [
                "rate-sync.toml: stores.mem.colour: unknown key (expected one of: engine, strategy)",
                "rate-sync.toml: limiters.auth.window_seconds: expected a number greater than 0, found -5",
                "rate-sync.toml: limiters.public.store: no store named \"nowhere\" (stores defined: mem)",
                "rate-sync.toml: limiters.public.rate_per_second: expected a number, found \"fast\"",
            ]
        )
    }

    func testRateSyncValidationRules() {
        let header = "[stores.m]\nengine = \"memory\"\n"
        XCTAssertEqual(
            problems(header + "[limiters.a]\nstore = \"m\"\n"),
            ["rate-sync.toml: limiters.a.rate_per_second: a token_bucket limiter needs rate_per_second or max_concurrent"]
        )
        XCTAssertEqual(
            problems(header + "[limiters.a]\nstore = \"m\"\nalgorithm = \"sliding_window\"\nlimit = 3\n"),
            [
                "rate-sync.toml: limiters.a.window_seconds: missing required key "
                    + "(a sliding_window limiter needs limit and window_seconds)"
            ]
        )
        XCTAssertEqual(
            problems(header + "[limiters.a]\nstore = \"m\"\nalgorithm = \"leaky\"\n"),
            ["rate-sync.toml: limiters.a.algorithm: expected \"token_bucket\" or \"sliding_window\", found \"leaky\""]
        )
        XCTAssertEqual(
            problems(header + "[limiters.a]\nstore = \"m\"\nrate_per_second = 0\n"),
            ["rate-sync.toml: limiters.a.rate_per_second: expected a number greater than 0, found 0"]
        )
        XCTAssertEqual(
            problems(header + "[limiters.a]\nstore = \"m\"\nmax_concurrent = 2.5\n"),
            ["rate-sync.toml: limiters.a.max_concurrent: expected a whole number, found 2.5"]
        )
    }

    func testBothSpellingsInOneTableIsAnError() {
        XCTAssertEqual(
            problems("[stores.m]\nengine = \"memory\"\nstrategy = \"memory\"\n[limiters.a]\nstore = \"m\"\nstore_id = \"m\"\nrate_per_second = 1\n"),
            [
                "rate-sync.toml: stores.m.strategy: \"engine\" and \"strategy\" are two spellings of one setting: keep one",
                "rate-sync.toml: limiters.a.store_id: \"store\" and \"store_id\" are two spellings of one setting: keep one",
            ]
        )
    }

    func testWrongTypesAndBadURLs() {
        XCTAssertEqual(
            problems(
                "[stores.r]\nengine = \"redis\"\nurl = \"http://:hunter2@example\"\nsocket_timeout = true\n"
                    + "[limiters.a]\nstore = \"r\"\nrate_per_second = 1\nfail_closed = \"sometimes\"\n"
            ),
            [
                "rate-sync.toml: stores.r.url: expected a URL starting with redis:// or rediss://",
                "rate-sync.toml: stores.r.socket_timeout: expected a number, found true",
                "rate-sync.toml: limiters.a.fail_closed: expected true or false, found \"sometimes\"",
            ]
        )
    }

    func testSyntaxErrorsCarryLineAndColumn() {
        let found = problems("[stores.m]\nengine = \"memory\"\n[limiters.a\n")
        XCTAssertEqual(found.count, 1)
        XCTAssertTrue(found[0].hasPrefix("rate-sync.toml: invalid TOML at line 3, column"), found[0])
    }

    func testUnknownEngine() {
        XCTAssertEqual(
            problems("[stores.m]\nengine = \"etcd\"\n[limiters.a]\nstore = \"m\"\nrate_per_second = 1\n"),
            [
                "rate-sync.toml: stores.m.engine: expected \"redis\", \"postgres\" or \"memory\", found \"etcd\""
            ]
        )
    }

    func testPostgresStoresTakeRateSyncsKeys() throws {
        let config = try load(
            """
            [stores.db]
            engine = "postgres"
            url = "postgresql://app:s3cr%40t@db.internal:6543/limits?sslmode=require"
            table_name = "limits"
            schema_name = "ops"
            auto_create = true
            pool_min_size = 1
            pool_max_size = 4
            timing_margin_ms = 25
            [limiters.w]
            store = "db"
            algorithm = "sliding_window"
            limit = 5
            window_seconds = 60
            """
        )
        guard case .postgres(let settings)? = config.stores["db"]?.engine else { return XCTFail("not a postgres store") }
        XCTAssertEqual(settings.url, PostgresURL(host: "db.internal", port: 6543, username: "app", password: "s3cr@t", database: "limits", requireTLS: true))
        XCTAssertEqual(settings.url.redacted, "postgresql://app:***@db.internal:6543/limits")
        XCTAssertEqual([settings.tableName, settings.schemaName], ["limits", "ops"])
        XCTAssertTrue(settings.autoCreate)
        XCTAssertEqual([settings.poolMinSize, settings.poolMaxSize], [1, 4])
        XCTAssertEqual(settings.timingMarginMs, 25)
        let defaults = try load("[stores.db]\nengine = \"postgres\"\nurl = \"postgres://localhost/x\"\n[limiters.a]\nstore = \"db\"\nrate_per_second = 1\n")
        XCTAssertEqual(defaults.stores["db"]?.engine, .postgres(PostgresStoreSettings(url: PostgresURL(host: "localhost", database: "x"))))
    }

    func testPostgresMistakesAreProblems() {
        XCTAssertEqual(
            problems(
                """
                [stores.db]
                engine = "postgres"
                url = "mysql://x@y/z"
                table_name = "state; DROP TABLE users"
                schema_name = "1st"
                pool_min_size = 5
                pool_max_size = 2
                timing_margin_ms = -1
                [limiters.a]
                store = "db"
                rate_per_second = 1
                """
            ),
            [
                "rate-sync.toml: stores.db.url: expected a URL starting with postgresql:// or postgres://",
                "rate-sync.toml: stores.db.table_name: expected a plain SQL identifier (letters, digits and _, not starting with a digit, at most 63 bytes), found \"state; DROP TABLE users\"",
                "rate-sync.toml: stores.db.schema_name: expected a plain SQL identifier (letters, digits and _, not starting with a digit, at most 63 bytes), found \"1st\"",
                "rate-sync.toml: stores.db.pool_min_size: expected at most the pool's maximum size (2), found 5",
                "rate-sync.toml: stores.db.timing_margin_ms: expected a number of at least 0, found -1.0",
            ]
        )
    }

    func testSentinelModeNamesItsSentinelsAndPrimary() throws {
        let config = try load(
            """
            [stores.redis]
            engine = "redis"
            mode = "sentinel"
            sentinels = ["127.0.0.1:26379", "[::1]:26380", "sentinel-3:26381"]
            master_name = "mymaster"
            sentinel_password = "sentinel-secret"
            password = "data-secret"
            db = 2
            [limiters.l]
            store = "redis"
            rate_per_second = 1
            """
        )
        guard case .redis(let settings)? = config.stores["redis"]?.engine else { return XCTFail() }
        XCTAssertEqual(
            settings.sentinel,
            SentinelSettings(
                sentinels: [
                    RedisAddress(host: "127.0.0.1", port: 26379), RedisAddress(host: "::1", port: 26380),
                    RedisAddress(host: "sentinel-3", port: 26381),
                ],
                masterName: "mymaster",
                password: "sentinel-secret"
            )
        )
        XCTAssertEqual(settings.url.password, "data-secret")
        XCTAssertEqual(settings.url.database, 2)
        XCTAssertEqual(RedisAddress(host: "::1", port: 26380).description, "[::1]:26380")
    }

    func testTopologyMistakesAreProblems() {
        let found = problems(
            """
            [stores.a]
            engine = "redis"
            mode = "sentinel"
            master_name = "m"
            [stores.b]
            engine = "redis"
            mode = "sentinel"
            sentinels = ["nowhere"]
            master_name = "m"
            [stores.c]
            engine = "redis"
            mode = "cluster"
            [stores.d]
            engine = "redis"
            mode = "ring"
            url = "redis://127.0.0.1:7000"
            [stores.e]
            engine = "redis"
            mode = "sentinel"
            sentinels = ["127.0.0.1:26379"]
            """
        ).joined(separator: "\n")
        for expected in [
            "stores.a.sentinels: sentinel mode needs sentinels",
            "stores.b.sentinels[0]: expected host:port, found \"nowhere\"",
            "stores.c.nodes: cluster mode needs nodes",
            "stores.d.mode: expected \"standalone\", \"sentinel\" or \"cluster\", found \"ring\"",
            "stores.e.master_name: missing required key",
        ] {
            XCTAssertTrue(found.contains(expected), "missing \(expected) in\n\(found)")
        }
    }

    func testClusterModeTakesSeedNodesAndRefusesBracesInKeys() throws {
        let config = try load(
            """
            [stores.redis]
            engine = "redis"
            mode = "cluster"
            nodes = ["127.0.0.1:7000", "127.0.0.1:7001"]
            url = "redis://:pw@127.0.0.1:7002/0"
            [limiters.l]
            store = "redis"
            rate_per_second = 1
            """
        )
        guard case .redis(let settings)? = config.stores["redis"]?.engine else { return XCTFail() }
        XCTAssertEqual(settings.clusterSeeds?.map(\.port), [7000, 7001, 7002])
        XCTAssertEqual(settings.url.password, "pw")
        let found = problems(
            """
            [stores.redis]
            engine = "redis"
            mode = "cluster"
            nodes = ["127.0.0.1:7000"]
            key_prefix = "rl{x}"
            [limiters."a{b}"]
            store = "redis"
            rate_per_second = 1
            """
        ).joined(separator: "\n")
        XCTAssertTrue(found.contains("stores.redis.key_prefix: in cluster mode, braces"), found)
        XCTAssertTrue(found.contains("limiters.a{b}: in cluster mode, a limiter name cannot hold braces"), found)
    }
}
