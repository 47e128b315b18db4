import Foundation
import TestSupport
import XCTest

/// Metrics, the access log, graceful drain and hot reload, through the real binary.
final class OperationsEndToEndTests: XCTestCase {
    private let limits = """
        [stores.local]
        engine = "memory"
        [limiters.auth]
        store = "local"
        algorithm = "sliding_window"
        limit = 5
        window_seconds = 300
        fail_closed = true
        [limiters.public]
        store = "local"
        rate_per_second = 10000
        """

    func testMetricsCountEveryOutcomeAndNeverAClient() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: GatewayHarness.deploymentRoutes)
        defer { harness.stop() }
        // Each curl is a connection of its own, spread over the harness's two event loops: the
        // counts below are the loops' counts summed.
        for _ in 0..<8 { _ = try curl(["-X", "POST", "\(harness.base)/auth/login"]) }
        for _ in 0..<3 { _ = try curl(["\(harness.base)/products"]) }
        XCTAssertEqual(try harness.metric("ratesync_decisions_total", ["route": "auth", "limiter": "auth", "outcome": "allowed"]), 5)
        XCTAssertEqual(try harness.metric("ratesync_decisions_total", ["route": "auth", "limiter": "auth", "outcome": "limited"]), 3)
        XCTAssertEqual(try harness.metric("ratesync_decisions_total", ["route": "public", "limiter": "public", "outcome": "allowed"]), 3)
        XCTAssertEqual(try harness.metric("ratesync_upstream_responses_total", ["upstream": "app", "status_class": "2xx"]), 8)
        XCTAssertEqual(try harness.metric("ratesync_upstream_latency_seconds_count", ["upstream": "app"]), 8)
        XCTAssertEqual(try harness.metric("ratesync_requests_in_flight"), 0)
        // The upstream's own address labels its target's series; a client's never appears.
        let text = try curl(["\(harness.admin)/metrics"]).text.split(separator: "\n")
            .map { $0.replacingOccurrences(of: "target=\"127.0.0.1:\(harness.upstreamPort)\"", with: "") }.joined(separator: "\n")
        XCTAssertFalse(text.contains("127.0.0.1"), "no client or identifier label, ever")
    }

    /// An admin connection that sends nothing is closed after the idle timeout; one that asks
    /// is answered.
    func testASilentAdminConnectionIsClosed() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: GatewayHarness.deploymentRoutes, server: "idle_timeout_seconds = 0.5")
        defer { harness.stop() }
        let silent = try runProgram("/usr/bin/env", ["python3", interopScript("silent_client.py"), String(harness.adminPort)], stdoutOnly: true)
        XCTAssertTrue(silent.output.hasPrefix("closed 0.") || silent.output.hasPrefix("closed 1."), silent.output)
        XCTAssertEqual(try curl(["\(harness.admin)/healthz"]).status, 200)
    }

    func testFailedOpenAndFailedClosedAreCounted() throws {
        let port = try unusedPort()
        let harness = try GatewayHarness(
            rateSync: limits.replacingOccurrences(of: "engine = \"memory\"", with: "engine = \"redis\"\nurl = \"redis://127.0.0.1:\(port)/0\""),
            routes: GatewayHarness.deploymentRoutes,
            gatewayArguments: ["--allow-degraded-start"]
        )
        defer { harness.stop() }
        for _ in 0..<4 { XCTAssertEqual(try curl(["-X", "POST", "\(harness.base)/auth/login"]).status, 503) }
        for _ in 0..<2 { XCTAssertEqual(try curl(["\(harness.base)/products"]).status, 200) }
        XCTAssertEqual(try harness.metric("ratesync_decisions_total", ["route": "auth", "outcome": "failed_closed"]), 4)
        XCTAssertEqual(try harness.metric("ratesync_decisions_total", ["route": "public", "outcome": "failed_open"]), 2)
        XCTAssertEqual(try harness.metric("ratesync_store_breaker_state", ["store": "local"]), 2, "open")
        // Every store call's time, answered or not.
        XCTAssertEqual(try harness.metric("ratesync_store_latency_seconds_count", ["store": "local"]), 6)
        XCTAssertEqual(try harness.metric("ratesync_store_latency_seconds_bucket", ["store": "local", "le": "+Inf"]), 6)
        XCTAssertEqual(try harness.metric("ratesync_store_connections", ["store": "local"]), 0)
    }

    func testAccessLogLinesAreJSONWithTheirFields() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: GatewayHarness.deploymentRoutes)
        defer { harness.stop() }
        _ = try curl(["\(harness.base)/products?page=2"])
        for _ in 0..<6 { _ = try curl(["-X", "POST", "\(harness.base)/auth/login"]) }
        var lines: [Substring] = []
        let deadline = Date().addingTimeInterval(5)
        repeat {
            lines = harness.gateway.text.split(separator: "\n").filter { $0.hasPrefix("{\"time\"") }
            if lines.count >= 7 { break }
            usleep(20_000)
        } while Date() < deadline
        XCTAssertEqual(lines.count, 7, harness.gateway.text)
        let entries = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        // Each event loop writes its own lines in batches: lines of requests on different
        // connections need not be in the order the requests were made.
        let gets = entries.filter { $0["method"] as? String == "GET" }
        XCTAssertEqual(gets.count, 1)
        let get = try XCTUnwrap(gets.first)
        XCTAssertEqual(get["path"] as? String, "/products?page=2")
        XCTAssertEqual(get["status"] as? Int, 200)
        XCTAssertEqual(get["route"] as? String, "public")
        XCTAssertEqual(get["limiter"] as? String, "public")
        XCTAssertEqual(get["outcome"] as? String, "allowed")
        XCTAssertEqual(get["upstream"] as? String, "app")
        XCTAssertEqual(get["client"] as? String, "127.0.0.1")
        XCTAssertNotNil(get["upstream_ms"] as? Double)
        XCTAssertNotNil(get["duration_ms"] as? Double)
        XCTAssertNotNil(ISO8601DateFormatter.withFractionalSeconds.date(from: get["time"] as? String ?? ""))
        let limited = entries.filter { $0["status"] as? Int == 429 }
        XCTAssertEqual(limited.count, 1)
        let denied = try XCTUnwrap(limited.first)
        XCTAssertEqual(denied["outcome"] as? String, "limited")
        XCTAssertTrue(denied["upstream_ms"] is NSNull, "a limited request never reached the upstream")
    }

    /// A client that goes away before its answer is written (waiting for a slow upstream, or
    /// in the middle of its own body, over HTTP/1.1 or on an HTTP/2 stream) still leaves its
    /// line, with status 499 and what was decided for it; the connection's next state is
    /// clean (nothing left in flight).
    func testARequestItsClientAbandonsIsLoggedAs499() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: GatewayHarness.deploymentRoutes, server: "h2c = true")
        defer { harness.stop() }
        _ = try rawExchange(port: harness.proxyPort, Array("GET /products?delay_ms=3000 HTTP/1.1\r\nHost: x\r\n\r\n".utf8), timeout: 1)
        _ = try rawExchange(port: harness.proxyPort, Array("POST /products HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc".utf8), timeout: 1)
        let h2 = try runProgram("/usr/bin/curl", ["-s", "--http2-prior-knowledge", "--max-time", "1", "\(harness.base)/products?delay_ms=2999"])
        XCTAssertEqual(h2.status, 28, "curl gave up (timed out) before the answer")
        // The only answered request: after it, no line may be missing.
        XCTAssertEqual(try curl(["\(harness.base)/products?page=1"]).status, 200)

        var entries: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(5)
        repeat {
            let lines = harness.gateway.text.split(separator: "\n").filter { $0.hasPrefix("{\"time\"") }
            entries = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            if entries.count >= 4 { break }
            usleep(20_000)
        } while Date() < deadline
        XCTAssertEqual(entries.count, 4, harness.gateway.text)
        let abandoned = entries.filter { $0["status"] as? Int == 499 }
        XCTAssertEqual(
            Set(abandoned.compactMap { $0["path"] as? String }),
            ["/products?delay_ms=3000", "/products", "/products?delay_ms=2999"],
            harness.gateway.text
        )
        for entry in abandoned {
            XCTAssertEqual(entry["route"] as? String, "public")
            XCTAssertEqual(entry["outcome"] as? String, "allowed")
            XCTAssertTrue(entry["upstream_ms"] is NSNull, "no answer came from the upstream")
        }
        XCTAssertEqual(entries.filter { $0["status"] as? Int == 200 }.count, 1)
        XCTAssertEqual(try harness.metric("ratesync_requests_in_flight"), 0)
    }

    func testReloadAppliesAValidFileAndKeepsTheOldOneOnAnInvalidFileWithTrafficFlowing() throws {
        let harness = try GatewayHarness(
            rateSync: limits,
            routes: GatewayHarness.deploymentRoutes,
            server: #"trusted_proxies = ["127.0.0.1"]"#
        )
        defer { harness.stop() }
        let load = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-s", "--rate", "40/s", "-w", "%{http_code}\\n"] + (0..<160).flatMap { _ in ["-o", "/dev/null", "\(harness.base)/products"] }
        )
        Thread.sleep(forTimeInterval: 0.5)

        // Invalid: the old limits stay (5 per window for auth).
        try limits.replacingOccurrences(of: "limit = 5", with: "limit = -1")
            .write(toFile: harness.rateSyncPath, atomically: true, encoding: .utf8)
        kill(harness.gateway.pid, SIGHUP)
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(try harness.metric("ratesync_config_reloads_total", ["result": "failure"]), 1)
        XCTAssertTrue(harness.gateway.text.contains("limiters.auth.limit: expected a whole number greater than 0, found -1"))
        let before = try (0..<6).map { _ in try curl(["-X", "POST", "-H", "X-Forwarded-For: 198.51.100.1", "\(harness.base)/auth/login"]).status }
        XCTAssertEqual(before, [200, 200, 200, 200, 200, 429])

        // Valid: a new limit of 2 applies to the next requests.
        try limits.replacingOccurrences(of: "limit = 5", with: "limit = 2")
            .write(toFile: harness.rateSyncPath, atomically: true, encoding: .utf8)
        kill(harness.gateway.pid, SIGHUP)
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(try harness.metric("ratesync_config_reloads_total", ["result": "success"]), 1)
        let after = try (0..<3).map { _ in try curl(["-X", "POST", "-H", "X-Forwarded-For: 198.51.100.2", "\(harness.base)/auth/login"]).status }
        XCTAssertEqual(after, [200, 200, 429])

        XCTAssertEqual(try load.waitForExit(timeout: 30), 0)
        let codes = load.text.split(separator: "\n")
        XCTAssertEqual(codes.count, 160)
        XCTAssertTrue(codes.allSatisfy { $0 == "200" }, "no request dropped across both reloads: \(Set(codes))")
    }

    func testASlowRequestSurvivesSIGTERMAndTheGatewayExitsZero() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: GatewayHarness.deploymentRoutes)
        defer { harness.stop() }
        let slow = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-s", "-o", "/dev/null", "-w", "%{http_code}", "\(harness.base)/slow?delay_ms=1500"]
        )
        Thread.sleep(forTimeInterval: 0.4)
        kill(harness.gateway.pid, SIGTERM)
        Thread.sleep(forTimeInterval: 0.3)
        // No longer accepting.
        let refused = try runProgram("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "\(harness.base)/x"], stdoutOnly: true)
        XCTAssertEqual(refused.output, "000")
        XCTAssertEqual(try slow.waitForExit(timeout: 10), 0)
        XCTAssertEqual(slow.text, "200", "the request in flight finished")
        XCTAssertEqual(try harness.gateway.waitForExit(timeout: 10), 0)
        // Its access-log line was still in its loop's batch when the drain ended: written anyway.
        let line = harness.gateway.text.split(separator: "\n").first { $0.contains("\"path\":\"/slow?delay_ms=1500\"") }
        XCTAssertNotNil(line, harness.gateway.text)
        XCTAssertTrue(line?.contains("\"status\":200") == true, harness.gateway.text)
    }

    func testDrainTimeoutBoundsTheWait() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: GatewayHarness.deploymentRoutes, server: "drain_timeout_seconds = 0.5")
        defer { harness.stop() }
        let slow = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-s", "-o", "/dev/null", "-w", "%{http_code}", "\(harness.base)/slow?delay_ms=5000"]
        )
        Thread.sleep(forTimeInterval: 0.3)
        let started = Date()
        kill(harness.gateway.pid, SIGTERM)
        XCTAssertEqual(try harness.gateway.waitForExit(timeout: 10), 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 4, "bounded by drain_timeout_seconds, not by the slow request")
        _ = try slow.waitForExit(timeout: 10)
    }
}

extension ISO8601DateFormatter {
    static var withFractionalSeconds: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
