import Foundation
import TestSupport
import XCTest

/// WebSocket handshakes through the real gateway to a real WebSocket server (the Python
/// `websockets` library, in the interop environment scripts/test.sh sets up), by a real client:
/// limited like requests at the handshake, then tunnelled byte for byte.
final class WebSocketEndToEndTests: XCTestCase {
    private var upstream: ChildProcess?
    private var upstreamPort = 0
    private var harness: GatewayHarness?
    private var python = ""

    override func setUpWithError() throws {
        guard let python = ProcessInfo.processInfo.environment["RATESYNC_PYTHON"] else {
            throw XCTSkip("RATESYNC_PYTHON is not set: scripts/test.sh sets it up with websockets")
        }
        self.python = python
        (upstream, upstreamPort) = try startInteropServer("websocket_upstream.py", python: python)
    }

    override func tearDownWithError() throws {
        harness?.stop()
        upstream?.stop()
    }

    private func gateway(limiter: String, server: String = "", upstream: String = "", environment: [String: String] = [:]) throws -> GatewayHarness {
        let harness = try GatewayHarness(
            rateSync: limiter,
            routes: GatewayHarness.catchAllRoute(limiters: ["ws"]),
            server: server,
            upstream: upstream,
            upstreamURL: "http://127.0.0.1:\(upstreamPort)",
            environment: environment
        )
        self.harness = harness
        return harness
    }

    private func client(_ arguments: [String]) throws -> String {
        let result = try runProgram(python, [interopScript("websocket_client.py")] + arguments, stdoutOnly: true)
        XCTAssertEqual(result.status, 0, result.output)
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func url(_ harness: GatewayHarness) -> String { "ws://127.0.0.1:\(harness.proxyPort)/chat" }

    func testAThousandMessagesEchoBothWaysThroughTheTunnel() throws {
        let harness = try gateway(limiter: GatewayHarness.memoryWindow("ws", limit: 100))
        XCTAssertEqual(try client(["echo", url(harness), "1000"]), "echoed 1000")
        // The handshake was counted once, as a request of its route.
        let admitted = try harness.metric("ratesync_decisions_total", ["route": "all", "limiter": "ws", "outcome": "allowed"])
        XCTAssertEqual(admitted, 1)
    }

    func testHandshakesAreLimitedLikeRequests() throws {
        let harness = try gateway(limiter: GatewayHarness.memoryWindow("ws", limit: 3))
        XCTAssertEqual(try client(["handshakes", url(harness), "4"]), "101 101 101 429")
    }

    func testOpenTunnelsHoldTheirConcurrencySlotsUntilTheyClose() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let harness = try gateway(
            limiter: """
                [stores.redis]
                engine = "redis"
                url = "${REDIS_URL}"
                [limiters.ws]
                store = "redis"
                max_concurrent = 2
                """,
            environment: ["REDIS_URL": redis.url]
        )
        let outcome = try client(["concurrent", url(harness)])
        let fields = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(outcome.utf8)) as? [String: Int], outcome)
        XCTAssertEqual(fields["first"], 101)
        XCTAssertEqual(fields["second"], 101)
        XCTAssertEqual(fields["third"], 429, "a third open tunnel is refused")
        XCTAssertEqual(fields["after_close"], 101, "a closed tunnel gives its slot back")
    }

    func testASilentTunnelIsClosedAfterItsIdleTimeout() throws {
        let harness = try gateway(limiter: GatewayHarness.memoryWindow("ws", limit: 100), server: "websocket_idle_timeout_seconds = 1")
        let outcome = try client(["idle", url(harness)])
        let seconds = try XCTUnwrap(Double(outcome.replacingOccurrences(of: "closed after ", with: "")), outcome)
        XCTAssertGreaterThanOrEqual(seconds, 0.9)
        XCTAssertLessThan(seconds, 5)
    }

    // MARK: over HTTP/2 (RFC 8441)

    private func h2Client(_ harness: GatewayHarness, _ arguments: String...) throws -> String {
        let result = try runProgram(python, [interopScript("websocket_h2_client.py"), String(harness.proxyPort)] + arguments, stdoutOnly: true)
        XCTAssertEqual(result.status, 0, result.output)
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testAnExtendedConnectOverHTTP2IsTunnelledToAnHTTP1Upstream() throws {
        let harness = try gateway(limiter: GatewayHarness.memoryWindow("ws", limit: 100), server: "h2c = true")
        XCTAssertEqual(try h2Client(harness, "settings"), "enable_connect_protocol=1")
        XCTAssertEqual(try h2Client(harness, "echo", "300"), "echoed 300")
        let admitted = try harness.metric("ratesync_decisions_total", ["route": "all", "limiter": "ws", "outcome": "allowed"])
        XCTAssertEqual(admitted, 1, "the handshake counts once")
    }

    func testExtendedConnectsAreLimitedLikeRequests() throws {
        let harness = try gateway(limiter: GatewayHarness.memoryWindow("ws", limit: 3), server: "h2c = true")
        XCTAssertEqual(try h2Client(harness, "handshakes", "4"), "200 200 200 429")
    }

    func testAnExtendedConnectToAnUpstreamThatTakesNoTunnelIsRefused() throws {
        let harness = try gateway(limiter: GatewayHarness.memoryWindow("ws", limit: 100), server: "h2c = true", upstream: #"protocol = "h2""#)
        XCTAssertEqual(try h2Client(harness, "handshakes", "1"), "501")
    }
}
