import Foundation
import TestSupport
import XCTest

/// HTTP/1.1 proxying behaviour through the real gateway binary.
final class ProxyingEndToEndTests: XCTestCase {
    private let openLimiter = """
        [stores.m]
        engine = "memory"
        [limiters.open]
        store = "m"
        rate_per_second = 100000
        """
    private let openRoute = """
        [[routes]]
        name = "all"
        upstream = "app"
        limiters = ["open"]
        """

    private func harness(server: String = "", upstream: String = "", upstreamURL: String? = nil) throws -> GatewayHarness {
        try GatewayHarness(rateSync: openLimiter, routes: openRoute, server: server, upstream: upstream, upstreamURL: upstreamURL)
    }

    func testForwardedHeadersAreSetAndHopByHopHeadersRemoved() throws {
        let gateway = try harness()
        defer { gateway.stop() }
        let answer = try curl([
            "-H", "Host: shop.example", "-H", "X-Forwarded-For: 10.9.9.9", "-H", "Connection: X-Secret-Hop",
            "-H", "X-Secret-Hop: 1", "-H", "Keep-Alive: timeout=5", "-H", "X-Kept: yes",
            "\(gateway.base)/echo/path?q=1",
        ])
        XCTAssertEqual(answer.status, 200)
        let echo = try answer.json()
        let headers = try XCTUnwrap(echo["headers"] as? [String: String])
        XCTAssertEqual(echo["uri"] as? String, "/echo/path?q=1")
        XCTAssertEqual(headers["host"], "shop.example")
        XCTAssertEqual(headers["x-forwarded-for"], "10.9.9.9, 127.0.0.1")
        XCTAssertEqual(headers["x-forwarded-proto"], "http")
        XCTAssertEqual(headers["x-forwarded-host"], "shop.example")
        XCTAssertEqual(headers["x-kept"], "yes")
        XCTAssertNil(headers["x-secret-hop"], "headers named by Connection are hop-by-hop")
        XCTAssertNil(headers["keep-alive"])
    }

    /// An upstream closing its idle kept-alive connection just as the next request arrives (both
    /// while the gateway is stopped, Tests/interop/idle_close_race.py): the request, which the
    /// upstream never saw, is sent again on a fresh connection instead of answered 502.
    func testARequestOnAConnectionTheUpstreamJustClosedIsSentAgain() throws {
        // A GET, and a POST whose empty chunked body's last chunk must go again with its head.
        for shape in [[], ["chunked"]] {
            let upstreamPort = try unusedPort()
            let gateway = try harness(upstreamURL: "http://127.0.0.1:\(upstreamPort)")
            defer { gateway.stop() }
            let run = try runProgram(
                "/usr/bin/env",
                ["python3", interopScript("idle_close_race.py"), String(gateway.proxyPort), String(upstreamPort), String(gateway.gateway.pid)] + shape,
                stdoutOnly: true
            )
            XCTAssertEqual(run.status, 0, "\(shape): \(run.output)")
            XCTAssertTrue(run.output.contains("second answer: second"), "\(shape): \(run.output)")
        }
    }

    func testKeepAliveIsReusedOnBothSides() throws {
        let gateway = try harness()
        defer { gateway.stop() }
        let transfers = (0..<6).flatMap { ["-o", "/dev/null", "\(gateway.base)/n\($0)"] }
        let result = try runProgram(
            "/usr/bin/curl",
            ["-sv", "-w", "upstream=%header{x-upstream-connection}\\n"] + transfers
        )
        XCTAssertEqual(result.output.components(separatedBy: "Re-using existing connection").count - 1, 5, result.output)
        let upstreamConnections = Set(
            result.output.split(separator: "\n").filter { $0.hasPrefix("upstream=") }
        )
        XCTAssertEqual(upstreamConnections.count, 1, "one kept-alive upstream connection served all six")
    }

    func testLargeBodiesStreamBothWaysWithFlatMemory() throws {
        let gateway = try harness()
        defer { gateway.stop() }
        _ = try curl(["\(gateway.base)/warmup"])
        let before = gateway.gateway.memory().rss
        let size = 256 * 1024 * 1024

        let download = try runProgram(
            "/usr/bin/curl",
            ["-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "\(gateway.base)/big?bytes=\(size)"]
        )
        XCTAssertEqual(download.output, "200 \(size)")

        let upload = try runProgram(
            "/bin/sh",
            ["-c", "head -c \(size) /dev/zero | curl -s -T - -X POST -H 'Content-Type: application/octet-stream' \(gateway.base)/upload"]
        )
        let echo = try JSONSerialization.jsonObject(with: Data(upload.output.utf8)) as? [String: Any]
        XCTAssertEqual(echo?["received_bytes"] as? Int, size, "chunked upload of 256 MiB arrived whole")

        let peak = gateway.gateway.memory().peak
        XCTAssertLessThan(peak - before, 64 * 1024 * 1024, "gateway memory grew by \((peak - before) >> 20) MiB")
    }

    /// Peers with Nagle's algorithm on that write a message's head and its body apart
    /// (Tests/interop/nagle_writes.py: a client's requests, an upstream's answers, as Python's
    /// http.server writes them) hold the body until the head is acknowledged. On a kept-alive
    /// connection the kernel delays that acknowledgement by 40 ms or more unless the gateway asks
    /// for it at once: each side's wait added 44 ms to every exchange before it did.
    func testBodiesWrittenApartFromTheirHeadsAreNotHeldByDelayedAcknowledgements() throws {
        let (upstream, upstreamPort) = try startInteropServer("nagle_writes.py", ["upstream"])
        defer { upstream.stop() }
        let gateway = try harness(upstreamURL: "http://127.0.0.1:\(upstreamPort)")
        defer { gateway.stop() }
        for requests in ["whole", "split"] {
            let run = try runProgram(
                "/usr/bin/env",
                ["python3", interopScript("nagle_writes.py"), "client", String(gateway.proxyPort), "9", requests],
                stdoutOnly: true
            )
            XCTAssertEqual(run.status, 0, "\(requests): \(run.output)")
            let median = reportedNumber("median_ms", in: run.output)
            XCTAssertLessThan(try XCTUnwrap(median, run.output), 30, "requests \(requests): \(run.output)")
        }
    }

    func testHeadAndContentLengthBodies() throws {
        let gateway = try harness()
        defer { gateway.stop() }
        // Over a raw socket: a HEAD answer must end right after its headers, or the next
        // response on the connection would be misread.
        let answer = try rawExchange(
            port: gateway.proxyPort,
            Array("HEAD /big?bytes=12345 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
        )
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200"), answer)
        XCTAssertTrue(answer.lowercased().contains("content-length: 12345"), answer)
        XCTAssertTrue(answer.hasSuffix("\r\n\r\n"), "no body after a HEAD answer: \(answer)")
        let posted = try curl(["--data-binary", String(repeating: "a", count: 100_000), "\(gateway.base)/form"])
        XCTAssertEqual((try posted.json())["received_bytes"] as? Int, 100_000)
    }

    /// The gateway's own answers to a HEAD (no route, a denial) end at their head too: their
    /// JSON body went out after it, and a client (or a proxy in front, reusing the connection)
    /// read it as the start of the next answer.
    func testTheGatewaysOwnAnswersToAHeadEndAtTheirHead() throws {
        let gateway = try GatewayHarness(
            rateSync: GatewayHarness.deploymentLimiters,
            routes: """
                [[routes]]
                name = "auth"
                path_prefix = "/auth/"
                upstream = "app"
                limiters = ["auth"]
                """
        )
        defer { gateway.stop() }
        let heads = ["HEAD /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"]
            + Array(repeating: "HEAD /auth/login HTTP/1.1\r\nHost: x\r\n\r\n", count: 11)
        let answer = try rawExchange(
            port: gateway.proxyPort,
            Array((heads.joined() + "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").utf8)
        )
        let statuses = answer.components(separatedBy: "\r\n\r\n").dropLast().map { $0.prefix(12) }
        XCTAssertEqual(
            statuses, [Substring("HTTP/1.1 404")] + Array(repeating: "HTTP/1.1 200", count: 10) + ["HTTP/1.1 429", "HTTP/1.1 404"],
            "each answer starts where the one before ended: \(answer)"
        )
        XCTAssertEqual(answer.components(separatedBy: "{\"detail\"").count - 1, 1, "only the GET's answer has a body: \(answer)")
    }

    func testExpectContinueIsAnsweredOnceTheLimiterAdmits() throws {
        let gateway = try harness()
        defer { gateway.stop() }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("expect-\(UUID().uuidString)")
        try Data(repeating: UInt8(ascii: "b"), count: 200_000).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let answer = try curl(["-H", "Expect: 100-continue", "--data-binary", "@\(file.path)", "\(gateway.base)/upload"])
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual((try answer.json())["received_bytes"] as? Int, 200_000)
    }

    func testUnreachableUpstreamIs502() throws {
        let gateway = try harness(upstreamURL: "http://127.0.0.1:\(try unusedPort())")
        defer { gateway.stop() }
        let answer = try curl(["\(gateway.base)/x"])
        XCTAssertEqual(answer.status, 502)
        XCTAssertEqual(((try answer.json())["detail"] as? [[String: Any]])?.first?["type"] as? String, "upstream_unavailable")
        XCTAssertFalse(answer.text.contains("127.0.0.1"), "no internals in the body")
    }

    func testUpstreamThatDropsTheConnectionIs502AndTheGatewayStaysUp() throws {
        let gateway = try harness()
        defer { gateway.stop() }
        XCTAssertEqual(try curl(["\(gateway.base)/x?drop=1"]).status, 502)
        XCTAssertEqual(try curl(["\(gateway.base)/x"]).status, 200)
    }

    func testSlowUpstreamIs504() throws {
        let gateway = try harness(upstream: "response_timeout_ms = 300")
        defer { gateway.stop() }
        let started = Date()
        let answer = try curl(["\(gateway.base)/x?delay_ms=3000"])
        XCTAssertEqual(answer.status, 504)
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.5)
        XCTAssertEqual(((try answer.json())["detail"] as? [[String: Any]])?.first?["type"] as? String, "upstream_timeout")
        XCTAssertEqual(try curl(["\(gateway.base)/x?delay_ms=50"]).status, 200)
    }

    func testOversizedHeadersAre431AndGarbageIs400() throws {
        let gateway = try harness(server: "max_header_bytes = 8192")
        defer { gateway.stop() }
        let big = try curl(["-H", "X-Big: \(String(repeating: "z", count: 20_000))", "\(gateway.base)/x"])
        XCTAssertEqual(big.status, 431)
        XCTAssertEqual(try curl(["-H", "X-Fine: \(String(repeating: "z", count: 2_000))", "\(gateway.base)/x"]).status, 200)

        let garbage = try rawExchange(port: gateway.proxyPort, Array("NOT HTTP AT ALL\r\n\r\n".utf8))
        XCTAssertTrue(garbage.hasPrefix("HTTP/1.1 400"), garbage)
        XCTAssertTrue(garbage.contains("bad_request"), garbage)
        let badTarget = try rawExchange(port: gateway.proxyPort, Array("GET nothing HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        XCTAssertTrue(badTarget.hasPrefix("HTTP/1.1 400"), badTarget)
        // Still serving.
        XCTAssertEqual(try curl(["\(gateway.base)/x"]).status, 200)
    }

    func testAdminEndpoints() throws {
        let gateway = try harness()
        defer { gateway.stop() }
        XCTAssertEqual(try curl(["\(gateway.admin)/healthz"]).status, 200)
        let health = try curl(["\(gateway.admin)/health/rate-limiter"])
        XCTAssertEqual(health.status, 200)
        let json = try health.json()
        XCTAssertEqual(json["status"] as? String, "healthy")
        let stores = try XCTUnwrap(json["stores"] as? [String: [String: Any]])
        XCTAssertEqual(stores["m"]?["reachable"] as? Bool, true)
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let gateway = try harness()
        defer { gateway.stop() }
        // The first is slow: the others wait behind it, read but not yet parsed.
        let requests = "GET /first?delay_ms=200 HTTP/1.1\r\nHost: x\r\n\r\n"
            + "POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            + "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
            + "GET /third HTTP/1.1\r\nHost: x\r\n\r\n"
        let answers = try rawExchange(port: gateway.proxyPort, Array((requests + "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").utf8))
        XCTAssertEqual(answers.components(separatedBy: "HTTP/1.1 200 OK").count - 1, 5, answers)
        let order = try ["\\/first", "\\/second", "\\/chunked", "\\/third", "\\/last"].map { try XCTUnwrap(answers.range(of: $0), $0).lowerBound }
        XCTAssertEqual(order, order.sorted(), answers)
        XCTAssertTrue(answers.contains("\"received_bytes\":5"), answers)
        XCTAssertTrue(answers.contains("\"received_bytes\":7"), answers)
        // Bytes that are no request, after them, are answered after their answers.
        let broken = try rawExchange(port: gateway.proxyPort, Array((requests + "NOT HTTP\r\n\r\n").utf8))
        XCTAssertEqual(broken.components(separatedBy: "HTTP/1.1 200 OK").count - 1, 4, broken)
        XCTAssertTrue(broken.hasSuffix("}") && broken.contains("HTTP/1.1 400"), broken)
        XCTAssertLessThan(try XCTUnwrap(broken.range(of: "\\/third")).lowerBound, try XCTUnwrap(broken.range(of: "HTTP/1.1 400")).lowerBound)
    }

    func testIdleClientConnectionsAreClosed() throws {
        let gateway = try harness(server: "idle_timeout_seconds = 0.5")
        defer { gateway.stop() }
        let started = Date()
        // Half a request head, then silence: the connection is idle and must be closed.
        let answer = try rawExchange(port: gateway.proxyPort, Array("GET / HTTP/1.1\r\n".utf8), timeout: 10)
        XCTAssertEqual(answer, "")
        XCTAssertLessThan(Date().timeIntervalSince(started), 8, "closed by the idle timeout, not by our 10 s read timeout")
    }
}
