import Foundation
import TestSupport
import XCTest

/// Routing and limiting through the real gateway binary, seen by curl.
final class LimitingEndToEndTests: XCTestCase {
    func testAuthRouteAdmitsTenThenAnswers429InRateSyncsShape() throws {
        let harness = try GatewayHarness(rateSync: GatewayHarness.deploymentLimiters, routes: GatewayHarness.deploymentRoutes)
        defer { harness.stop() }
        var remaining: [String] = []
        let firstSent = Date().timeIntervalSince1970
        for _ in 0..<10 {
            let answer = try curl(["-X", "POST", "\(harness.base)/auth/login"])
            XCTAssertEqual(answer.status, 200)
            XCTAssertEqual(answer.headers["x-ratelimit-limit"], "10")
            remaining.append(answer.headers["x-ratelimit-remaining"] ?? "?")
            XCTAssertEqual(answer.headers["ratelimit-policy"], "\"auth\";q=10;w=300")
        }
        XCTAssertEqual(remaining, (0..<10).reversed().map(String.init))

        let started = Date().timeIntervalSince1970
        let denied = try curl(["-X", "POST", "\(harness.base)/auth/login"])
        XCTAssertEqual(denied.status, 429)
        XCTAssertEqual(denied.headers["content-type"], "application/json")
        XCTAssertEqual(denied.headers["x-ratelimit-remaining"], "0")
        let retryAfter = try XCTUnwrap(Int(denied.headers["retry-after"] ?? ""))
        // The oldest admission leaves 300 s after it was made: at most 300 s from now, and less
        // by the time the admissions took (ten curl runs, seconds on a slow machine).
        let sinceFirst = Date().timeIntervalSince1970 - firstSent
        XCTAssertTrue(
            retryAfter <= 300 && Double(retryAfter) >= 300 - sinceFirst - 1,
            "the oldest admission, \(sinceFirst) s ago, leaves 300 s after it; got \(retryAfter)"
        )
        let reset = try XCTUnwrap(Double(denied.headers["x-ratelimit-reset"] ?? ""))
        XCTAssertEqual(reset, started + 300, accuracy: 3)
        let rateLimit = try XCTUnwrap(denied.headers["ratelimit"])
        XCTAssertTrue(rateLimit.hasPrefix("\"auth\";r=0;t="), rateLimit)
        XCTAssertEqual(Double(rateLimit.components(separatedBy: "t=").last ?? "") ?? 0, reset - started, accuracy: 3)

        let detail = try XCTUnwrap((try denied.json())["detail"] as? [[String: Any]]).first
        XCTAssertEqual(detail?["type"] as? String, "rate_limit_exceeded")
        XCTAssertEqual(detail?["msg"] as? String, "Rate limit exceeded. Retry in \(retryAfter) seconds.")
        let context = try XCTUnwrap(detail?["context"] as? [String: Any])
        XCTAssertEqual(context["retry_after_seconds"] as? Int, retryAfter)
        XCTAssertEqual(context["limit"] as? Int, 10)
        XCTAssertEqual(context["limiter"] as? String, "auth")

        // The public route has its own limiter and budget.
        let open = try curl(["\(harness.base)/products"])
        XCTAssertEqual(open.status, 200)
        XCTAssertEqual(open.headers["x-ratelimit-limit"], "100")
        XCTAssertEqual(open.headers["ratelimit-policy"], "\"public\";q=100;w=1")
        XCTAssertNil(open.headers["retry-after"])
    }

    /// A client that resets its connection (HTTP/1.1) or its stream (HTTP/2), or makes a
    /// connection error (HTTP/2), while its request waits on the upstream: the exchange ends there
    /// and gives back its `max_concurrent` slot (and its upstream connection) at once, not never.
    func testAClientThatResetsMidExchangeGivesBackItsConcurrencySlot() throws {
        let harness = try GatewayHarness(
            rateSync: """
                [stores.m]
                engine = "memory"
                [limiters.one]
                store = "m"
                max_concurrent = 1
                """,
            routes: """
                [[routes]]
                name = "one"
                path_prefix = "/"
                upstream = "app"
                limiters = ["one"]
                identifier = "global"
                """,
            server: "h2c = true"
        )
        defer { harness.stop() }
        XCTAssertEqual(try curl(["\(harness.base)/x"]).status, 200)
        // An HTTP/2 connection error ends the connection's exchanges when its GOAWAY goes out,
        // not when the client lets go of the socket (the script keeps it open).
        for name in ["connection", "stream", "connection-error"] {
            let client = try runProgram("/usr/bin/env", ["python3", interopScript("reset_mid_request.py"), String(harness.proxyPort), name])
            XCTAssertEqual(client.status, 0, "\(name): \(client.output)")
            // Well before the upstream would have answered (5 s), the slot is free again.
            var statuses: [Int] = []
            let deadline = Date().addingTimeInterval(2)
            while Date() < deadline {
                let status = try curl(["\(harness.base)/x"]).status
                statuses.append(status)
                if status == 200 { break }
                Thread.sleep(forTimeInterval: 0.1)
            }
            XCTAssertEqual(statuses.last, 200, "\(name), then: \(statuses)")
        }
    }

    func testTokenBucketAdmitsItsBurstUnderParallelLoad() throws {
        let harness = try GatewayHarness(
            rateSync: """
                [stores.m]
                engine = "memory"
                [limiters.slow]
                store = "m"
                rate_per_second = 1
                burst = 5
                """,
            routes: """
                [[routes]]
                name = "all"
                upstream = "app"
                limiters = ["slow"]
                identifier = "global"
                """
        )
        defer { harness.stop() }
        let started = Date()
        let transfers = (0..<40).flatMap { _ in ["-o", "/dev/null", "\(harness.base)/x"] }
        let result = try runProgram(
            "/usr/bin/curl",
            ["-s", "--parallel", "--parallel-max", "20", "-w", "%{http_code}\\n"] + transfers,
            stdoutOnly: true
        )
        let elapsed = Date().timeIntervalSince(started)
        let codes = result.output.split(separator: "\n")
        XCTAssertEqual(codes.count, 40)
        let admitted = codes.filter { $0 == "200" }.count
        XCTAssertEqual(codes.filter { $0 == "429" }.count, 40 - admitted, "every answer is 200 or 429")
        XCTAssertGreaterThanOrEqual(admitted, 5)
        XCTAssertLessThanOrEqual(admitted, 5 + Int(elapsed.rounded(.up)), "burst plus one per elapsed second")
    }

    /// rate-sync.toml's `[fastapi] trusted_proxy_networks` (rate-sync's own FastAPI setting) is
    /// the gateway's trust when gateway.toml names none, and the same file loads in rate-sync.
    func testFastAPITrustedProxyNetworksAreTheDefaultTrust() throws {
        let rateSync = GatewayHarness.memoryWindow("one", limit: 1) + """

            [fastapi]
            trusted_proxy_networks = ["127.0.0.0/8", "::1"]
            """
        let trusting = try GatewayHarness(rateSync: rateSync, routes: GatewayHarness.catchAllRoute(limiters: ["one"]))
        defer { trusting.stop() }
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.1", "\(trusting.base)/"]).status, 200)
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.2", "\(trusting.base)/"]).status, 200, "another client behind the proxy")
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.1", "\(trusting.base)/"]).status, 429)

        // gateway.toml's own trusted_proxies, even empty, wins.
        let strict = try GatewayHarness(
            rateSync: rateSync,
            routes: GatewayHarness.catchAllRoute(limiters: ["one"]),
            server: "trusted_proxies = []"
        )
        defer { strict.stop() }
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.1", "\(strict.base)/"]).status, 200)
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.2", "\(strict.base)/"]).status, 429, "both are 127.0.0.1")

        guard let python = ProcessInfo.processInfo.environment["RATESYNC_PYTHON"] else {
            throw XCTSkip("RATESYNC_PYTHON is not set: scripts/test.sh sets it up with rate-sync 0.4.2")
        }
        let loaded = try runProgram(python, [interopScript("ratesync_client.py"), trusting.rateSyncPath, "one", "x", "2"], stdoutOnly: true)
        XCTAssertEqual(loaded.output.trimmingCharacters(in: .whitespacesAndNewlines), "1", "rate-sync loads the same file: \(loaded.output)")
    }

    /// The token bucket's burst set in gateway.toml's `[limiters.<id>]`, keeping rate-sync.toml
    /// free of keys rate-sync refuses.
    func testBurstFromGatewayTomlKeepsTheSharedFileRateSyncs() throws {
        let rateSync = """
            [stores.m]
            engine = "memory"
            [limiters.slow]
            store = "m"
            rate_per_second = 0.01
            """
        let harness = try GatewayHarness(
            rateSync: rateSync,
            routes: GatewayHarness.catchAllRoute(limiters: ["slow"]),
            gatewayExtras: "[limiters.slow]\nburst = 3\n"
        )
        defer { harness.stop() }
        let statuses = try (0..<4).map { _ in try curl(["\(harness.base)/"]).status }
        XCTAssertEqual(statuses, [200, 200, 200, 429], "a burst of 3, then one per 100 s")

        let directory = harness.directory
        let gatewayPath = directory.appendingPathComponent("gateway.toml").path
        let text = try String(contentsOfFile: gatewayPath, encoding: .utf8)
        for (extra, expected) in [
            ("[limiters.nope]\nburst = 2\n", "limiters.nope: no limiter named \"nope\""),
            ("[limiters.slow]\nburst = 2\nlease = 1\n", "limiters.slow.lease"),
        ] {
            let broken = directory.appendingPathComponent("broken.toml").path
            try text.replacingOccurrences(of: "[limiters.slow]\nburst = 3\n", with: extra).write(toFile: broken, atomically: true, encoding: .utf8)
            let check = try runProgram(Binaries.gateway.path, ["check", "--config", broken])
            XCTAssertEqual(check.status, 1, check.output)
            XCTAssertTrue(check.output.contains(expected), check.output)
        }
    }

    func testClientIPThroughTrustedProxiesIgnoresSpoofedEntries() throws {
        let harness = try GatewayHarness(
            rateSync: GatewayHarness.memoryWindow("one", limit: 1),
            routes: GatewayHarness.catchAllRoute(limiters: ["one"]),
            server: #"trusted_proxies = ["127.0.0.0/8", "::1"]"#
        )
        defer { harness.stop() }
        // The peer is 127.0.0.1, a trusted proxy: the client is the address it forwarded.
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.1", "\(harness.base)/"]).status, 200)
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.2", "\(harness.base)/"]).status, 200)
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 198.51.100.1", "\(harness.base)/"]).status, 429)
        // Prepending a forged address does not buy a new budget.
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 203.0.113.99, 198.51.100.1", "\(harness.base)/"]).status, 429)
        // IPv6 spellings of one address share one budget.
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: 2001:db8::7", "\(harness.base)/"]).status, 200)
        XCTAssertEqual(try curl(["-H", "X-Forwarded-For: [2001:DB8:0::7]:999", "\(harness.base)/"]).status, 429)
    }

    func testHeaderIdentifierAndGlobalBucket() throws {
        let harness = try GatewayHarness(
            rateSync: GatewayHarness.memoryWindow("per_key", limit: 2),
            routes: """
                [[routes]]
                name = "keyed"
                path_prefix = "/api/"
                upstream = "app"
                limiters = ["per_key"]
                identifier = "header:X-API-Key"
                on_missing_header = "reject"
                """
        )
        defer { harness.stop() }
        let missing = try curl(["\(harness.base)/api/x"])
        XCTAssertEqual(missing.status, 400)
        XCTAssertTrue(missing.text.contains("X-API-Key"), missing.text)
        for _ in 0..<2 { XCTAssertEqual(try curl(["-H", "X-API-Key: alpha", "\(harness.base)/api/x"]).status, 200) }
        XCTAssertEqual(try curl(["-H", "X-API-Key: alpha", "\(harness.base)/api/x"]).status, 429)
        XCTAssertEqual(try curl(["-H", "X-API-Key: beta", "\(harness.base)/api/x"]).status, 200)
    }

    func testRoutingFirstMatchMethodsHostAnd404() throws {
        let harness = try GatewayHarness(
            rateSync: "[stores.m]\nengine = \"memory\"\n[limiters.a]\nstore = \"m\"\nrate_per_second = 1000\n",
            routes: """
                [[routes]]
                name = "writes"
                path_prefix = "/api/"
                methods = ["POST"]
                upstream = "app"
                limiters = ["a"]
                [[routes]]
                name = "reads"
                path_prefix = "/api/search"
                methods = ["GET"]
                upstream = "app"
                limiters = ["a"]
                [[routes]]
                name = "internal"
                path_prefix = "/api/"
                host = "internal.example"
                upstream = "app"
                """
        )
        defer { harness.stop() }
        XCTAssertEqual(try curl(["-X", "POST", "\(harness.base)/api/x"]).headers["ratelimit-policy"], "\"a\";q=1000;w=1")
        let internalHost = try curl(["-H", "Host: internal.example:8080", "\(harness.base)/api/x"])
        XCTAssertEqual(internalHost.status, 200)
        XCTAssertNil(internalHost.headers["x-ratelimit-limit"], "a route without limiters adds no headers")
        let missing = try curl(["\(harness.base)/api/x"])
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(((try missing.json())["detail"] as? [[String: Any]])?.first?["type"] as? String, "route_not_found")
        XCTAssertEqual(try curl(["\(harness.base)/elsewhere"]).status, 404)
        // A HEAD takes the route of its GET: the upstream runs the GET handler for it.
        let head = try curl(["--head", "\(harness.base)/api/search"])
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.headers["ratelimit-policy"], "\"a\";q=1000;w=1")
        // A dot segment cannot smuggle a request past its route.
        XCTAssertEqual(try curl(["--path-as-is", "-X", "POST", "\(harness.base)/other/../api/x"]).headers["ratelimit-policy"], "\"a\";q=1000;w=1")
    }

    func testDeniedExpectContinueRequestGets429WithoutSendingItsBody() throws {
        let harness = try GatewayHarness(
            rateSync: GatewayHarness.memoryWindow("one", limit: 1),
            routes: GatewayHarness.catchAllRoute(limiters: ["one"], identifier: "global")
        )
        defer { harness.stop() }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("expect-\(UUID().uuidString)")
        try Data(repeating: 0x61, count: 3_000_000).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let arguments = ["-H", "Expect: 100-continue", "--data-binary", "@\(file.path)", "\(harness.base)/upload"]
        let first = try curl(arguments)
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual((try first.json())["received_bytes"] as? Int, 3_000_000)
        let denied = try curl(arguments)
        XCTAssertEqual(denied.status, 429)
        XCTAssertEqual(denied.headers["connection"], "close", "the unsent body leaves the connection unusable")
        XCTAssertNotNil(denied.headers["retry-after"])
    }
}
