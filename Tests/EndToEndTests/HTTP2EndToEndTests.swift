import Foundation
import TestSupport
import XCTest

/// HTTP/2 and TLS through the real binary, with curl, nghttp, h2load and openssl as the peers.
final class HTTP2EndToEndTests: XCTestCase {
    private var certificates: TestCertificates!

    override func setUpWithError() throws {
        certificates = try TestCertificates(commonName: "localhost")
    }

    override func tearDown() {
        certificates?.remove()
    }

    private let limits = """
        [stores.m]
        engine = "memory"
        [limiters.auth]
        store = "m"
        algorithm = "sliding_window"
        limit = 5
        window_seconds = 300
        [limiters.open]
        store = "m"
        rate_per_second = 1000000
        [limiters.exact]
        store = "m"
        algorithm = "sliding_window"
        limit = 37
        window_seconds = 300
        """

    private let routes = """
        [[routes]]
        name = "auth"
        path_prefix = "/auth/"
        upstream = "app"
        limiters = ["auth"]
        [[routes]]
        name = "exact"
        path_prefix = "/exact/"
        upstream = "app"
        limiters = ["exact"]
        identifier = "global"
        [[routes]]
        name = "open"
        path_prefix = "/"
        upstream = "app"
        limiters = ["open"]
        """

    private func tlsHarness(upstreamURL: String? = nil, upstream: String = "", server: String = "") throws -> GatewayHarness {
        try GatewayHarness(
            rateSync: limits,
            routes: routes,
            server: server,
            upstream: upstream,
            upstreamURL: upstreamURL,
            gatewayExtras: """
                [server.tls]
                cert = "\(certificates.serverCert)"
                key = "\(certificates.serverKey)"
                min_version = "1.2"
                """
        )
    }

    func testCurlOverTLSSpeaksH2ThroughTheSameRoutesAndLimits() throws {
        let harness = try tlsHarness()
        defer { harness.stop() }
        let base = "https://localhost:\(harness.proxyPort)"
        let answer = try curl(["--http2", "--cacert", certificates.caCert, "-w", "", "\(base)/echo"])
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.headers["x-ratelimit-limit"], "1000000")
        let echo = try answer.json()
        let headers = try XCTUnwrap(echo["headers"] as? [String: String])
        XCTAssertEqual(headers["host"], "localhost:\(harness.proxyPort)", ":authority becomes Host")
        XCTAssertEqual(headers["x-forwarded-proto"], "https")
        let version = try runProgram("/usr/bin/curl", ["-s", "--http2", "--cacert", certificates.caCert, "-o", "/dev/null", "-w", "%{http_version}", "\(base)/x"], stdoutOnly: true)
        XCTAssertEqual(version.output, "2")

        let statuses = try (0..<6).map { _ in try curl(["--http2", "--cacert", certificates.caCert, "-X", "POST", "\(base)/auth/login"]).status }
        XCTAssertEqual(statuses, [200, 200, 200, 200, 200, 429])
        let denied = try curl(["--http2", "--cacert", certificates.caCert, "-X", "POST", "\(base)/auth/login"])
        XCTAssertEqual(denied.status, 429)
        XCTAssertNotNil(denied.headers["retry-after"])
        XCTAssertEqual(((try denied.json())["detail"] as? [[String: Any]])?.first?["type"] as? String, "rate_limit_exceeded")
        // HTTP/1.1 over the same TLS listener (ALPN http/1.1).
        XCTAssertEqual(try runProgram("/usr/bin/curl", ["-s", "--http1.1", "--cacert", certificates.caCert, "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "\(base)/x"], stdoutOnly: true).output, "1.1 200")
    }

    func testOpenSSLNegotiatesH2ByALPN() throws {
        let harness = try tlsHarness()
        defer { harness.stop() }
        let result = try runProgram("/bin/sh", ["-c", "echo | openssl s_client -alpn h2 -connect 127.0.0.1:\(harness.proxyPort) -CAfile \(certificates.caCert) 2>/dev/null"])
        XCTAssertTrue(result.output.contains("ALPN protocol: h2"), result.output)
    }

    /// A TLS 1.3 client with Nagle's algorithm on (TCP_NODELAY unset, as a plain socket has it)
    /// holds its first request until its Finished is acknowledged. The gateway acknowledges it at
    /// once as the handshake completes; before, that request waited out the kernel's delayed
    /// acknowledgement, 40 ms or more on every connection (curl and browsers set TCP_NODELAY and
    /// never saw it). The fastest of five connections says which: about a millisecond, or 40.
    func testATLS13ClientWithNagleOnIsAnsweredWithoutADelayedAcknowledgementsWait() throws {
        let harness = try tlsHarness()
        defer { harness.stop() }
        for alpn in ["http/1.1", "h2"] {
            let run = try runProgram(
                "/usr/bin/env",
                ["python3", interopScript("tls_first_request.py"), String(harness.proxyPort), alpn, "5"],
                stdoutOnly: true
            )
            XCTAssertEqual(run.status, 0, "\(alpn): \(run.output)")
            XCTAssertTrue(run.output.contains("version=TLSv1.3"), "\(alpn): \(run.output)")
            let fastest = reportedNumber("fastest_ms", in: run.output)
            XCTAssertLessThan(try XCTUnwrap(fastest, run.output), 30, "\(alpn): \(run.output)")
        }
    }

    /// A request's body written apart from its head, over TLS, by a client with Nagle's algorithm
    /// on (Tests/interop/nagle_writes.py): the acknowledgement its body waits for is sent at once
    /// through the TLS layer too.
    func testABodyWrittenApartFromItsHeadOverTLSIsNotHeldByADelayedAcknowledgement() throws {
        let harness = try tlsHarness()
        defer { harness.stop() }
        let run = try runProgram(
            "/usr/bin/env",
            ["python3", interopScript("nagle_writes.py"), "client", String(harness.proxyPort), "9", "split", "http/1.1"],
            stdoutOnly: true
        )
        XCTAssertEqual(run.status, 0, run.output)
        let median = reportedNumber("median_ms", in: run.output)
        XCTAssertLessThan(try XCTUnwrap(median, run.output), 30, run.output)
    }

    /// The same over cleartext HTTP/2: each request's HEADERS, then its DATA, written apart, to
    /// an upstream that reads the whole body before it answers (an upstream that answers at
    /// once ends the stream before the DATA matters).
    func testAnHTTP2RequestsDataWrittenApartFromItsHeadersIsNotHeldByADelayedAcknowledgement() throws {
        let (upstream, upstreamPort) = try startInteropServer("nagle_writes.py", ["upstream"])
        defer { upstream.stop() }
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true", upstreamURL: "http://127.0.0.1:\(upstreamPort)")
        defer { harness.stop() }
        let run = try runProgram(
            "/usr/bin/env",
            ["python3", interopScript("nagle_writes.py"), "h2client", String(harness.proxyPort), "9"],
            stdoutOnly: true
        )
        XCTAssertEqual(run.status, 0, run.output)
        let median = reportedNumber("median_ms", in: run.output)
        XCTAssertLessThan(try XCTUnwrap(median, run.output), 30, run.output)
    }

    func testNghttpFetchesSeveralStreamsOnOneConnection() throws {
        let harness = try tlsHarness()
        defer { harness.stop() }
        let base = "https://localhost:\(harness.proxyPort)"
        let result = try runProgram("/usr/bin/nghttp", ["-nv", "\(base)/a", "\(base)/b", "\(base)/c", "\(base)/d"])
        let statuses = result.output.components(separatedBy: "recv (stream_id=").dropFirst().filter { $0.contains(":status: 200") }
        XCTAssertEqual(statuses.count, 4, result.output)
        XCTAssertEqual(result.output.components(separatedBy: "Connected").count - 1, 1, "one connection")
    }

    /// Frames of random kinds, flags, streams and payloads, and mutated requests, on thousands of
    /// connections (fixed seeds, Tests/interop/h2_fuzz.py): each connection is answered, the
    /// process stays up, and a well-formed client is served after them.
    func testRandomFramesNeitherCrashNorHangTheGateway() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true")
        defer { harness.stop() }
        for seed in 1...3 {
            let fuzz = try runProgram("/usr/bin/env", ["python3", interopScript("h2_fuzz.py"), String(harness.proxyPort), String(seed), "1000"], stdoutOnly: true)
            XCTAssertTrue(fuzz.output.contains("connections=1000 answered=1000"), "seed \(seed): \(fuzz.output)")
        }
        XCTAssertTrue(harness.gateway.isRunning, harness.gateway.text)
        XCTAssertEqual(try curl(["--http2-prior-knowledge", "\(harness.base)/x"]).status, 200)
    }

    /// nghttp2's decoder insists on hearing that its table shrank (RFC 7541, 4.2): a client
    /// announcing a smaller HPACK table than the default is still answered.
    func testAClientWithASmallerHPACKTableIsAnswered() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true")
        defer { harness.stop() }
        for size in ["0", "1000"] {
            let fetch = try runProgram("/usr/bin/nghttp", ["-nv", "-c", size, "\(harness.base)/a", "\(harness.base)/b"])
            XCTAssertEqual(fetch.output.components(separatedBy: ":status: 200").count - 1, 2, "table size \(size): \(fetch.output)")
            XCTAssertFalse(fetch.output.contains("COMPRESSION_ERROR"), fetch.output)
        }
    }

    func testH2loadWithManyStreamsFailsNothingAndAGlobalWindowAdmitsExactlyItsLimit() throws {
        let harness = try tlsHarness()
        defer { harness.stop() }
        let open = try runProgram("/usr/bin/h2load", ["-n", "3000", "-c", "4", "-m", "32", "https://127.0.0.1:\(harness.proxyPort)/bench"])
        XCTAssertTrue(open.output.contains("3000 succeeded, 0 failed, 0 errored, 0 timeout"), open.output)
        let exact = try runProgram("/usr/bin/h2load", ["-n", "600", "-c", "3", "-m", "50", "https://127.0.0.1:\(harness.proxyPort)/exact/x"])
        XCTAssertTrue(exact.output.contains("status codes: 37 2xx, 0 3xx, 563 4xx, 0 5xx"), exact.output)
        XCTAssertTrue(exact.output.contains("0 errored, 0 timeout"), exact.output)
    }

    func testCleartextPriorKnowledgeAndHTTP1OnOneListener() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true")
        defer { harness.stop() }
        let h2 = try runProgram("/usr/bin/curl", ["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "\(harness.base)/x"], stdoutOnly: true)
        XCTAssertEqual(h2.output, "2 200")
        let statuses = try (0..<6).map { _ in try curl(["--http2-prior-knowledge", "-X", "POST", "\(harness.base)/auth/login"]).status }
        XCTAssertEqual(statuses, [200, 200, 200, 200, 200, 429])
        let h1 = try runProgram("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "\(harness.base)/x"], stdoutOnly: true)
        XCTAssertEqual(h1.output, "1.1 200")
    }

    func testHTTPSUpstreamNeedsItsCAAndSaysSoWithout() throws {
        // An https upstream: another gateway terminating TLS in front of the demo upstream.
        let tlsFront = try tlsHarness()
        defer { tlsFront.stop() }
        let url = "https://localhost:\(tlsFront.proxyPort)"
        let trusting = try GatewayHarness(rateSync: limits, routes: routes, upstream: "ca_file = \"\(certificates.caCert)\"", upstreamURL: url)
        defer { trusting.stop() }
        let echo = try curl(["\(trusting.base)/through"]).json()
        XCTAssertEqual((echo["headers"] as? [String: String])?["x-forwarded-proto"], "https", "the front gateway saw TLS")

        let untrusting = try GatewayHarness(rateSync: limits, routes: routes, upstreamURL: url)
        defer { untrusting.stop() }
        XCTAssertEqual(try curl(["\(untrusting.base)/through"]).status, 502)
        XCTAssertEqual(try curl(["\(untrusting.base)/through"]).status, 502)
        let warnings = untrusting.gateway.text.components(separatedBy: "upstream unreachable").count - 1
        XCTAssertEqual(warnings, 1, "one clear line, not one per request: \(untrusting.gateway.text)")
        XCTAssertTrue(untrusting.gateway.text.lowercased().contains("certificate") || untrusting.gateway.text.contains("handshake"), untrusting.gateway.text)
    }

    func testAnHTTP2UpstreamOverTLSIsSpokenToByALPNAndItsNameResolved() throws {
        // The https upstream by name, offering only h2: it is reached at the address the name
        // resolves to, verified as the name, and spoken HTTP/2 to (an HTTP/1.1 request on a
        // connection that agreed on h2 would fail).
        let tlsFront = try tlsHarness()
        defer { tlsFront.stop() }
        let h2 = try GatewayHarness(
            rateSync: limits,
            routes: routes,
            upstream: "ca_file = \"\(certificates.caCert)\"\nprotocol = \"h2\"",
            upstreamURL: "https://localhost:\(tlsFront.proxyPort)"
        )
        defer { h2.stop() }
        for _ in 0..<3 {
            let echo = try curl(["\(h2.base)/through"]).json()
            XCTAssertEqual((echo["headers"] as? [String: String])?["x-forwarded-proto"], "https", "the front gateway saw TLS")
        }
        let served = try h2.metric(
            "ratesync_upstream_target_responses_total",
            ["upstream": "app", "target": "127.0.0.1:\(tlsFront.proxyPort)", "status_class": "2xx"]
        )
        XCTAssertEqual(served, 3, "the target is named by the address localhost resolved to")
    }

    func testRapidResetIsCutOffWhileOtherClientsAreServed() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true")
        defer { harness.stop() }
        let script = interopScript("rapid_reset.py")
        let attacker = try ChildProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script, String(harness.proxyPort), "20000"])
        let others = try (0..<20).map { _ in try curl(["--http2-prior-knowledge", "\(harness.base)/x"]).status }
        XCTAssertEqual(try attacker.waitForExit(timeout: 30), 0, attacker.text)
        XCTAssertTrue(others.allSatisfy { $0 == 200 }, "others served: \(others)")
        XCTAssertTrue(attacker.text.contains("goaway=1") || attacker.text.contains("closed=1"), attacker.text)
        XCTAssertTrue(attacker.text.contains("closed=1"), "the attacker is disconnected: \(attacker.text)")
        let memory = harness.gateway.memory().rss
        XCTAssertLessThan(memory, 200 * 1024 * 1024, "memory stays bounded: \(memory >> 20) MiB")
        XCTAssertEqual(try curl(["--http2-prior-knowledge", "\(harness.base)/x"]).status, 200)
    }

    func testReloadPicksUpARenewedCertificate() throws {
        let harness = try tlsHarness()
        defer { harness.stop() }
        func subject() throws -> String {
            let result = try runProgram("/bin/sh", ["-c", "echo | openssl s_client -connect 127.0.0.1:\(harness.proxyPort) -servername localhost 2>/dev/null | openssl x509 -noout -subject"])
            return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let original = try subject()
        XCTAssertTrue(original.contains("CN = localhost"), original)
        let renewed = try TestCertificates(commonName: "renewed.localhost")
        defer { renewed.remove() }
        for (from, to) in [(renewed.serverCert, certificates.serverCert), (renewed.serverKey, certificates.serverKey)] {
            try FileManager.default.removeItem(atPath: to)
            try FileManager.default.copyItem(atPath: from, toPath: to)
        }
        kill(harness.gateway.pid, SIGHUP)
        Thread.sleep(forTimeInterval: 0.5)
        let afterReload = try subject()
        XCTAssertTrue(afterReload.contains("CN = renewed.localhost"), afterReload)
        // A key that does not load fails the reload and keeps serving the certificate in use.
        try "not a key".write(toFile: certificates.serverKey, atomically: true, encoding: .utf8)
        kill(harness.gateway.pid, SIGHUP)
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertTrue(try subject().contains("CN = renewed.localhost"))
        XCTAssertEqual(try curl(["--cacert", renewed.caCert, "https://localhost:\(harness.proxyPort)/x"]).status, 200)
    }

    func testAnIdleHTTP2ConnectionIsClosed() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true\nidle_timeout_seconds = 0.5\ndrain_timeout_seconds = 0.5")
        defer { harness.stop() }
        let script = interopScript("rapid_reset.py")
        // Zero streams: the preface and SETTINGS, then silence (this client never answers the
        // closing PING, so the grace time, here the drain timeout, bounds the close).
        let idle = try runProgram("/usr/bin/env", ["python3", script, String(harness.proxyPort), "0"], stdoutOnly: true)
        XCTAssertTrue(idle.output.contains("goaway=1 closed=1"), idle.output)
    }

    /// A client that connects and sends nothing, or a few bytes of a TLS handshake or of the h2c
    /// preface, is closed after the idle timeout instead of holding its connection for good;
    /// once a connection has settled on a protocol, the protocol's own deadlines take over.
    func testAConnectionThatNeverSettlesOnAProtocolIsClosed() throws {
        let idle = "idle_timeout_seconds = 0.5"
        let tls = try tlsHarness(server: idle)
        defer { tls.stop() }
        let cleartext = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true\n\(idle)")
        defer { cleartext.stop() }
        let cases = [
            (tls.proxyPort, ""), (tls.proxyPort, "16030100"),
            (cleartext.proxyPort, ""), (cleartext.proxyPort, Data("PRI * HT".utf8).map { String(format: "%02x", $0) }.joined()),
        ]
        for (port, bytes) in cases {
            let run = try runProgram("/usr/bin/env", ["python3", interopScript("silent_client.py"), String(port), bytes], stdoutOnly: true)
            let words = run.output.split(separator: " ")
            XCTAssertEqual(words.first, "closed", "port \(port), bytes \(bytes): \(run.output)")
            XCTAssertLessThan(Double(words.last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 99, 3, run.output)
        }
        // A request that takes longer than the timeout, on a settled connection, finishes.
        let slow = try runProgram("/usr/bin/nghttp", ["-n", "-s", "https://127.0.0.1:\(tls.proxyPort)/slow?delay_ms=1200"])
        XCTAssertTrue(slow.output.contains(" 200 "), slow.output)
    }

    func testRequestBodiesReachTheUpstreamFramedSoNoneCanBeSmuggled() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true")
        defer { harness.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let large = directory.appendingPathComponent("large.bin")
        try Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: large)
        let posted = try curl(["--http2-prior-knowledge", "--data-binary", "@\(large.path)", "\(harness.base)/echo"]).json()
        XCTAssertEqual(posted["received_bytes"] as? Int, 300_000)

        // A GET whose body has no length: sent unframed, the upstream would read the body as a
        // second request on its connection, one the gateway never routed nor limited.
        let smuggled = directory.appendingPathComponent("smuggled.txt")
        try "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n".write(to: smuggled, atomically: true, encoding: .utf8)
        let answer = try curl([
            "--http2-prior-knowledge", "-X", "GET", "-H", "Content-Length:", "--data-binary", "@\(smuggled.path)",
            "\(harness.base)/echo",
        ])
        let echo = try answer.json()
        XCTAssertEqual(echo["received_bytes"] as? Int, 32, "the whole body reached the upstream as this request's body")
        XCTAssertEqual((echo["headers"] as? [String: String])?["transfer-encoding"], "chunked")
    }

    func testMalformedRequestsAreResetBeforeReachingTheUpstream() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true")
        defer { harness.stop() }
        let script = interopScript("h2_malformed.py")
        let result = try runProgram("/usr/bin/env", ["python3", script, String(harness.proxyPort)], stdoutOnly: true)
        // Each malformed stream is reset with PROTOCOL_ERROR (1); one that names no host at all
        // is answered 400, as an HTTP/1.1 request without Host; the valid one on the same
        // connection is answered.
        for name in ["space-in-path", "crlf-in-path", "lf-in-value", "upper-case-name", "connection-field", "host-differs", "absolute-path", "two-content-lengths", "obs-text-path", "utf8-path"] {
            XCTAssertTrue(result.output.contains("\(name) rst=1\n"), result.output)
        }
        XCTAssertTrue(result.output.contains("no-authority status=400\n"), result.output)
        XCTAssertTrue(result.output.contains("valid status=200\n"), result.output)
    }

    /// The protocol's rules, probed case by case with a raw client (Tests/interop/h2_conformance.py):
    /// what must end the connection (GOAWAY with the RFC's code), what must reset only its stream,
    /// and what must be answered.
    func testFramingStreamAndFlowControlRulesAreEnforced() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true")
        defer { harness.stop() }
        let script = interopScript("h2_conformance.py")
        let result = try runProgram("/usr/bin/env", ["python3", script, String(harness.proxyPort)], stdoutOnly: true)
        let expected = [
            // Connection errors: PROTOCOL_ERROR (1), FLOW_CONTROL_ERROR (3), FRAME_SIZE_ERROR (6).
            "data-on-idle-stream": "goaway=1",
            "even-stream": "goaway=1",
            "first-frame-not-settings": "goaway=1",
            "interrupted-header-block": "goaway=1",
            "push-promise": "goaway=1",
            "rst-on-idle-stream": "goaway=1",
            "window-update-of-zero": "goaway=1",
            "max-frame-size-too-small": "goaway=1",
            "connection-window-overflow": "goaway=3",
            "initial-window-too-large": "goaway=3",
            "frame-too-large": "goaway=6",
            // Stream errors: PROTOCOL_ERROR (1), FLOW_CONTROL_ERROR (3), STREAM_CLOSED (5),
            // REFUSED_STREAM (7) for a stream over the announced concurrency.
            "body-longer-than-its-length": "rst=1",
            "body-shorter-than-its-length": "rst=1",
            "length-without-body": "rst=1",
            "trailers-without-end-stream": "rst=1",
            "stream-window-overflow": "rst=3",
            "data-after-end-stream": "rst=5",
            "too-many-streams": "limit=100 rst=7",
            // Answered.
            "ping": "ack",
            "settings-acknowledged": "ack",
            "continuation": "status=200",
            "padding": "status=200 received=5",
            "trailers": "status=200 received=5",
            "oversized-headers-then-more": "status=431 then status=200",
            "frames-within-the-peer-frame-size": "status=200 bytes=100000 largest=16384",
            "zero-window-holds-data-until-update": "before=0 after=10",
            "client-goaway-closes-once-done": "status=200 closed",
            "decoder-table-shrunk": "updates=[0] status=200",
            // Floods cut off with ENHANCE_YOUR_CALM (11), whether or not the client reads.
            "settings-flood": "goaway=11",
            "ping-flood": "goaway=11",
            "priority-flood": "goaway=11",
            "unknown-frame-flood": "goaway=11",
            "empty-data-flood": "goaway=11",
            "continuation-flood": "goaway=11",
            // A header list that only the decoder's table makes large: COMPRESSION_ERROR (9).
            "indexed-field-bomb": "goaway=9",
            // Stream identifiers and closed streams (RFC 9113, 5.1 and 5.1.1).
            "stream-below-one-used": "status=200 then goaway=1",
            "data-on-closed-stream": "status=200 then goaway=5",
            "frames-after-a-reset-are-ignored": "rst=1 then status=200",
            "initial-window-overflows-a-stream": "goaway=3",
        ]
        for (name, outcome) in expected {
            XCTAssertTrue(result.output.contains("\(name) \(outcome)\n"), "\(name): \(result.output)")
        }
        // Not HTTP/2 at all: the cleartext listener takes it for HTTP/1.1 and closes.
        XCTAssertTrue(result.output.contains("bad-preface closed\n"), result.output)
        XCTAssertEqual(try curl(["--http2-prior-knowledge", "\(harness.base)/x"]).status, 200, "the gateway is still serving")
    }

    /// Bodies several times a window in both directions, on streams sharing one connection: the
    /// gateway must give receive windows back as the upstream takes the uploads, and hold the
    /// upstream's downloads while a client with small windows (64 KiB) lets them through.
    func testLargeBodiesFlowBothWaysUnderFlowControl() throws {
        let harness = try tlsHarness()
        defer { harness.stop() }
        let base = "https://localhost:\(harness.proxyPort)"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        // Three uploads of 3 MB each (the gateway's stream window is 1 MiB).
        let upload = directory.appendingPathComponent("upload.bin")
        try Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: upload)
        let uploads = try runProgram(
            "/usr/bin/nghttp",
            ["-t", "20", "-d", upload.path, "\(base)/echo/1", "\(base)/echo/2", "\(base)/echo/3"],
            stdoutOnly: true
        )
        XCTAssertEqual(uploads.status, 0, uploads.output)
        XCTAssertEqual(uploads.output.components(separatedBy: "\"received_bytes\":3000000").count - 1, 3, uploads.output)

        // Three downloads of 3 MB each through 64 KiB client windows (stream and connection).
        let downloads = try runProgram(
            "/usr/bin/nghttp",
            ["-t", "20", "-w", "16", "-W", "16", "\(base)/big?bytes=3000000", "\(base)/big?bytes=3000000&n=2", "\(base)/big?bytes=3000000&n=3"],
            stdoutOnly: true
        )
        XCTAssertEqual(downloads.status, 0)
        XCTAssertEqual(downloads.output.utf8.count, 9_000_000)
        XCTAssertTrue(downloads.output.utf8.allSatisfy { $0 == UInt8(ascii: "x") })
    }

    /// A client that asks for 2 GB over 100 streams and reads none of it: each stream stops
    /// reading its upstream once 64 KiB wait to go out, so the gateway's memory stays bounded,
    /// and other clients are served meanwhile.
    /// Uploads on many streams at once, so that reads keep ending inside DATA frames: the bytes
    /// of a frame cut off by a read wait for the next one without keeping all that came before.
    func testSteadyUploadsOnManyStreamsCostBoundedMemory() throws {
        let harness = try tlsHarness()
        defer { harness.stop() }
        let body = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try Data(repeating: 0x61, count: 300_000).write(to: body)
        defer { try? FileManager.default.removeItem(at: body) }
        let before = harness.gateway.memory().rss
        let upload = try runProgram("/usr/bin/h2load", [
            "-n", "3000", "-c", "10", "-m", "20", "-d", body.path, "https://127.0.0.1:\(harness.proxyPort)/anything",
        ])
        XCTAssertTrue(upload.output.contains("3000 succeeded, 0 failed, 0 errored, 0 timeout"), upload.output)
        let peak = harness.gateway.memory().peak
        // 200 streams with up to 1 MiB of window each could hold 200 MiB; the connection windows
        // (1 MiB each) keep what is in flight near 10 MiB.
        XCTAssertLessThan(peak - before, 64 * 1024 * 1024, "peaked \((peak - before) >> 20) MiB above the start")
    }

    func testAClientThatReadsNothingCostsBoundedMemory() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true")
        defer { harness.stop() }
        let script = interopScript("h2_slow_reader.py")
        let before = harness.gateway.memory().rss
        let reader = try ChildProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script, String(harness.proxyPort), "100", "4"])
        _ = try reader.waitForLine(containing: "sent=100")
        Thread.sleep(forTimeInterval: 2)
        let during = harness.gateway.memory().rss
        XCTAssertEqual(try curl(["--http2-prior-knowledge", "\(harness.base)/x"]).status, 200, "another client is served")
        XCTAssertLessThan(during - before, 64 * 1024 * 1024, "grew by \((during - before) >> 20) MiB")
        XCTAssertEqual(try reader.waitForExit(timeout: 10), 0, reader.text)
    }

    /// 10 connections x 100 streams, each uploading 1 MiB to a route whose limiter keeps every
    /// request waiting: what the gateway holds is bounded by each connection's receive window
    /// (8 MiB), not by 100 streams' windows each.
    func testBodiesParkedBehindAPendingLimiterAreBoundedPerConnection() throws {
        let harness = try GatewayHarness(
            rateSync: """
                [stores.m]
                engine = "memory"
                [limiters.parked]
                store = "m"
                rate_per_second = 0.5
                timeout = 3600
                """,
            routes: GatewayHarness.catchAllRoute(limiters: ["parked"]),
            server: "h2c = true",
            gatewayExtras: "[limiters.parked]\nburst = 1"
        )
        defer { harness.stop() }
        let before = harness.gateway.memory().peak
        let result = try runProgram(
            "/usr/bin/env",
            ["python3", interopScript("h2_parked_uploads.py"), String(harness.proxyPort), "10", "100", String(1 << 20), "5"],
            stdoutOnly: true
        )
        let sent = try XCTUnwrap(Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("sent=".count)), result.output)
        let growth = harness.gateway.memory().peak - before
        print("parked uploads: \(sent >> 20) MiB let through by the windows, peak RSS grew by \(growth >> 20) MiB")
        XCTAssertLessThanOrEqual(sent, 10 * (9 << 20), "at most a connection window (8 MiB) each, and a little padding")
        XCTAssertLessThan(growth, 10 * (16 << 20), "within 16 MiB per connection")
        // The waiting streams' clients left and gave their reservations back: the next request
        // is admitted at once.
        XCTAssertEqual(try curl(["--http2-prior-knowledge", "-o", "/dev/null", "--max-time", "5", "\(harness.base)/x"]).status, 200)
    }

    /// A gRPC request the gateway answers itself is answered in gRPC's terms: HTTP 200 and a
    /// `grpc-status` trailer (RESOURCE_EXHAUSTED for a limiter's denial, UNAVAILABLE for a
    /// fail-closed store out of reach or an upstream that cannot be reached).
    func testGRPCRequestsAnsweredByTheGatewayGetGRPCStatuses() throws {
        let harness = try GatewayHarness(
            rateSync: """
                [stores.m]
                engine = "memory"
                [stores.gone]
                engine = "redis"
                url = "redis://127.0.0.1:1/0"
                [limiters.one]
                store = "m"
                algorithm = "sliding_window"
                limit = 1
                window_seconds = 300
                [limiters.closed]
                store = "gone"
                rate_per_second = 100
                fail_closed = true
                """,
            routes: """
                [[routes]]
                name = "closed"
                path_prefix = "/closed/"
                upstream = "app"
                limiters = ["closed"]
                [[routes]]
                name = "one"
                path_prefix = "/"
                upstream = "app"
                limiters = ["one"]
                """,
            server: "h2c = true",
            gatewayArguments: ["--allow-degraded-start"]
        )
        defer { harness.stop() }
        func call(_ path: String, grpc: Bool = true) throws -> String {
            let body = harness.directory.appendingPathComponent("message").path
            try Data([0, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: body))
            let headers = grpc ? ["-H", "content-type: application/grpc", "-H", "te: trailers"] : []
            let result = try runProgram("/usr/bin/nghttp", ["-nv"] + headers + ["-d", body, "\(harness.base)\(path)"], stdoutOnly: true)
            return result.output
        }
        _ = try call("/svc.Echo/Say")
        let denied = try call("/svc.Echo/Say")
        XCTAssertTrue(denied.contains(":status: 200"), denied)
        XCTAssertTrue(denied.contains("content-type: application/grpc"), denied)
        XCTAssertTrue(denied.contains("grpc-status: 8"), "RESOURCE_EXHAUSTED: \(denied)")
        XCTAssertTrue(denied.contains("grpc-message: Rate limit exceeded. Retry in "), denied)
        XCTAssertTrue(denied.contains("retry-after: "), "the rate-limit headers stay: \(denied)")
        XCTAssertTrue(denied.contains("x-ratelimit-limit: 1"), denied)
        let unavailable = try call("/closed/svc.Echo/Say")
        XCTAssertTrue(unavailable.contains("grpc-status: 14"), "UNAVAILABLE: \(unavailable)")
        // The same denial for a plain HTTP/2 request is an ordinary 429.
        XCTAssertTrue(try call("/x", grpc: false).contains(":status: 429"))
    }

    func testSIGTERMSendsGOAWAYAndLetsTheStreamInFlightFinish() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true")
        defer { harness.stop() }
        let slow = try ChildProcess(URL(fileURLWithPath: "/usr/bin/nghttp"), ["-nv", "\(harness.base)/slow?delay_ms=1500"])
        Thread.sleep(forTimeInterval: 0.5)
        kill(harness.gateway.pid, SIGTERM)
        XCTAssertEqual(try slow.waitForExit(timeout: 10), 0, slow.text)
        XCTAssertTrue(slow.text.contains("GOAWAY"), "the client was told: \(slow.text)")
        XCTAssertTrue(slow.text.contains(":status: 200"), "the stream in flight finished: \(slow.text)")
        XCTAssertEqual(try harness.gateway.waitForExit(timeout: 10), 0)
    }
}
