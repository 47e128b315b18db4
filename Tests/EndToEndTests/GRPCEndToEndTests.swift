import Foundation
import TestSupport
import XCTest

/// gRPC through the real gateway: a real gRPC server (Python `grpcio`) behind an upstream with
/// `protocol = "h2"`, called by a real gRPC client over cleartext HTTP/2. Streams are forwarded
/// as streams, trailers included; what the gateway answers itself is a gRPC status.
final class GRPCEndToEndTests: XCTestCase {
    private var upstream: ChildProcess?
    private var upstreamPort = 0
    private var harness: GatewayHarness?
    private var python = ""

    override func setUpWithError() throws {
        guard let python = ProcessInfo.processInfo.environment["RATESYNC_PYTHON"] else {
            throw XCTSkip("RATESYNC_PYTHON is not set: scripts/test.sh sets it up with grpcio")
        }
        self.python = python
        (upstream, upstreamPort) = try startInteropServer("grpc_upstream.py", python: python)
    }

    override func tearDownWithError() throws {
        harness?.stop()
        upstream?.stop()
    }

    private func gateway(rateSync: String, upstream extras: String = "", environment: [String: String] = [:]) throws -> GatewayHarness {
        let harness = try GatewayHarness(
            rateSync: rateSync,
            routes: GatewayHarness.catchAllRoute(limiters: ["calls"]),
            server: "h2c = true",
            upstream: "protocol = \"h2\"\n" + extras,
            upstreamURL: "http://127.0.0.1:\(upstreamPort)",
            environment: environment
        )
        self.harness = harness
        return harness
    }

    private func client(_ harness: GatewayHarness, _ arguments: String...) throws -> String {
        let result = try runProgram(python, [interopScript("grpc_client.py"), String(harness.proxyPort)] + arguments, stdoutOnly: true)
        XCTAssertEqual(result.status, 0, result.output)
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testCallsAreForwardedAsStreamsAndDeniedWithResourceExhausted() throws {
        let harness = try gateway(rateSync: GatewayHarness.memoryWindow("calls", limit: 5))
        // Trailers come through: a streamed answer's status, and the upstream's own error.
        XCTAssertEqual(try client(harness, "count", "20"), "OK 20")
        XCTAssertEqual(try client(harness, "fail"), "NOT_FOUND no such greeting")
        XCTAssertEqual(try client(harness, "say", "4"), "OK OK OK RESOURCE_EXHAUSTED")
        let denied = try client(harness, "details").split(separator: "|").map(String.init)
        XCTAssertEqual(denied.first, "RESOURCE_EXHAUSTED")
        XCTAssertNotEqual(denied.last, "-", "a denial says when to retry: \(denied)")
    }

    func testAFailClosedLimiterWhoseStoreIsDownAnswersUnavailable() throws {
        let redis = try RedisServer()
        let harness = try gateway(
            rateSync: """
                [stores.redis]
                engine = "redis"
                url = "${REDIS_URL}"
                [limiters.calls]
                store = "redis"
                algorithm = "sliding_window"
                limit = 100
                window_seconds = 60
                fail_closed = true
                """,
            environment: ["REDIS_URL": redis.url]
        )
        XCTAssertEqual(try client(harness, "say", "1"), "OK")
        redis.stop()
        XCTAssertEqual(try client(harness, "say", "1"), "UNAVAILABLE")
    }

    func testActiveChecksOfAnHTTP2TargetSpeakHTTP2() throws {
        let harness = try gateway(
            rateSync: GatewayHarness.memoryWindow("calls", limit: 100),
            upstream: """
                [upstreams.app.health_check]
                path = "/grpc.health.v1.Health/Check"
                interval_ms = 100
                unhealthy_threshold = 1
                healthy_threshold = 1
                """
        )
        let target = "127.0.0.1:\(upstreamPort)"
        // A gRPC server speaks nothing but HTTP/2: checks that pass are checks made over it.
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(try harness.metric("ratesync_upstream_target_healthy", ["target": target]), 1)
        XCTAssertEqual(try client(harness, "say", "1"), "OK")
        upstream?.stop()
        _ = try waitUntil("the stopped target is seen unhealthy", timeout: 3) {
            try harness.metric("ratesync_upstream_target_healthy", ["target": target]) == 0
        }
    }
}
