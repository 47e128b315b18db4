import Foundation
import TestSupport
import XCTest

/// Hostile HTTP/1.1 input through the real gateway, against an upstream that records the exact
/// requests it reads (Tests/interop/recording_upstream.py, a strict parser): every byte that
/// reaches it must belong to a request the gateway framed, routed and limited.
final class RequestFramingEndToEndTests: XCTestCase {
    private var recorder: ChildProcess!
    private var recorderPort = 0
    private var logPath = ""

    override func setUpWithError() throws {
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("recorded-\(UUID().uuidString).jsonl").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        (recorder, recorderPort) = try startInteropServer("recording_upstream.py", [logPath])
    }

    override func tearDown() {
        recorder?.stop()
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// What the upstream read, in order.
    private func recorded() throws -> [[String: Any]] {
        let text = try String(contentsOfFile: logPath, encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    private func targets() throws -> [String] {
        try recorded().map { ($0["target"] as? String) ?? "error: \($0["error"] ?? "?")" }
    }

    private let limits = """
        [stores.m]
        engine = "memory"
        [limiters.open]
        store = "m"
        rate_per_second = 100000
        [limiters.login]
        store = "m"
        algorithm = "sliding_window"
        limit = 1
        window_seconds = 60
        """

    /// `/auth/` limited to one request per client, `/keyed/` and `/by-query/` to one per API key
    /// (a header, a query parameter), a DELETE to `/items/` to one per client, everything else
    /// open.
    private let routes = """
        [[routes]]
        name = "auth"
        path_prefix = "/auth/"
        upstream = "app"
        limiters = ["login"]
        [[routes]]
        name = "keyed"
        path_prefix = "/keyed/"
        upstream = "app"
        limiters = ["login"]
        identifier = "header:X-API-Key"
        [[routes]]
        name = "by-query"
        path_prefix = "/by-query/"
        upstream = "app"
        limiters = ["login"]
        identifier = "query:api_key"
        [[routes]]
        name = "deletes"
        path_prefix = "/items/"
        methods = ["DELETE"]
        upstream = "app"
        limiters = ["login"]
        [[routes]]
        name = "admin"
        path_prefix = "/"
        host = "admin.example"
        upstream = "app"
        limiters = ["login"]
        [[routes]]
        name = "all"
        path_prefix = "/"
        upstream = "app"
        limiters = ["open"]
        """

    private func gateway(server: String = "") throws -> GatewayHarness {
        try GatewayHarness(rateSync: limits, routes: routes, server: server, upstreamURL: "http://127.0.0.1:\(recorderPort)")
    }

    private func exchange(_ harness: GatewayHarness, _ request: String, timeout: TimeInterval = 3) throws -> String {
        try rawExchange(port: harness.proxyPort, Array(request.utf8), timeout: timeout)
    }

    private func statuses(_ answer: String) -> [Int] {
        answer.components(separatedBy: "HTTP/1.1 ").dropFirst().compactMap { Int($0.prefix(3)) }
    }

    /// Polls until the upstream has read `count` requests (or a deadline passes).
    private func waitForRecorded(_ count: Int) throws {
        let deadline = Date().addingTimeInterval(5)
        while try recorded().count < count, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    }

    func testABodyNeverBecomesAnotherRequestWhateverTheMethodOrConnectionHeader() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let smuggled = "GET /auth/admin HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
        let chunked = String(smuggled.utf8.count, radix: 16) + "\r\n" + smuggled + "\r\n0\r\n\r\n"
        var shapes: [(String, String)] = []
        for method in ["GET", "HEAD", "DELETE", "OPTIONS", "PURGE", "POST"] {
            for connection in ["content-length", "Content-Length, close", "keep-alive, content-length", "host"] {
                shapes.append((method, "Connection: \(connection)\r\nContent-Length: \(smuggled.utf8.count)\r\n\r\n\(smuggled)"))
            }
            for connection in ["transfer-encoding", "Transfer-Encoding", "te, transfer-encoding"] {
                shapes.append((method, "Connection: \(connection)\r\nTransfer-Encoding: chunked\r\n\r\n\(chunked)"))
            }
        }
        for (index, (method, rest)) in shapes.enumerated() {
            let answer = try exchange(harness, "\(method) /shape/\(index) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\(rest)")
            XCTAssertEqual(statuses(answer).first, 200, "\(method) \(rest.debugDescription): \(answer)")
        }
        try waitForRecorded(shapes.count)
        let seen = try recorded()
        XCTAssertEqual(seen.count, shapes.count, "exactly one request per shape: \(seen.map { $0["target"] ?? $0["error"] ?? "?" })")
        for (index, request) in seen.enumerated() {
            XCTAssertEqual(request["target"] as? String, "/shape/\(index)")
            XCTAssertEqual(request["body"] as? String, smuggled, "the body arrived as a body")
            let headers = (request["headers"] as? [[String]]) ?? []
            XCTAssertEqual(headers.filter { $0[0].lowercased() == "host" }.map { $0[1] }, ["a"])
        }
    }

    func testBytesAfterAWebSocketHandshakeReachNoUpstreamUnlessItsTunnelOpens() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let smuggled = "GET /auth/admin HTTP/1.1\r\nHost: x\r\n\r\n"
        func handshake(_ path: String, upgrade: String = "websocket") -> String {
            "GET \(path) HTTP/1.1\r\nHost: a\r\nUpgrade: \(upgrade)\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        }
        // The upstream answers 200, not 101: no tunnel, and what followed the handshake was never
        // a request. The answer goes back, then the connection closes.
        var answer = try exchange(harness, handshake("/ws/refused") + smuggled)
        XCTAssertEqual(statuses(answer), [200], answer)
        // A handshake the limiter denies: nothing reaches the upstream at all.
        answer = try exchange(harness, handshake("/auth/ws") + smuggled)
        XCTAssertEqual(statuses(answer), [200], answer)
        answer = try exchange(harness, handshake("/auth/ws") + smuggled)
        XCTAssertEqual(statuses(answer), [429], answer)
        // Other protocols too are only ever asked as websocket; h2c is never asked for.
        _ = try exchange(harness, handshake("/ws/listed", upgrade: "h2c, websocket") + smuggled)
        _ = try exchange(harness, handshake("/ws/h2c", upgrade: "h2c") + smuggled)
        try waitForRecorded(4)
        Thread.sleep(forTimeInterval: 0.2)
        let seen = try recorded()
        XCTAssertEqual(
            seen.map { $0["target"] as? String ?? "error" },
            ["/ws/refused", "/auth/ws", "/ws/listed", "/ws/h2c"],
            "one request per handshake, never the bytes after it"
        )
        let upgrades = seen.map { request in
            ((request["headers"] as? [[String]]) ?? []).filter { $0[0].lowercased() == "upgrade" }.map { $0[1] }
        }
        XCTAssertEqual(upgrades, [["websocket"], ["websocket"], ["websocket"], []])
    }

    func testAnUpstreamSwitchingToAnotherProtocolIsAnError() throws {
        let rogue = try GarbageServer(reply: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nPRI * HTTP/2.0")
        defer { rogue.stop() }
        let harness = try GatewayHarness(rateSync: limits, routes: routes, upstreamURL: "http://127.0.0.1:\(rogue.port)")
        defer { harness.stop() }
        let answer = try exchange(harness, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        XCTAssertEqual(statuses(answer), [502], answer)
        XCTAssertFalse(answer.contains("PRI"), answer)
    }

    func testTheSameRulesHoldForRequestsArrivingOverHTTP2() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        let body = FileManager.default.temporaryDirectory.appendingPathComponent("smuggled-\(UUID().uuidString).txt")
        try "GET /auth/admin HTTP/1.1\r\nHost: x\r\n\r\n".write(to: body, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: body) }
        let h2 = ["--http2-prior-knowledge", "-H", "Content-Length:", "--data-binary", "@\(body.path)"]
        XCTAssertEqual(try curl(h2 + ["-X", "TRACE", "\(harness.base)/trace"]).status, 405)
        for method in ["GET", "DELETE", "OPTIONS", "PURGE"] {
            XCTAssertEqual(try curl(h2 + ["-X", method, "\(harness.base)/\(method.lowercased())"]).status, 200, method)
        }
        XCTAssertEqual(try curl(["--http2-prior-knowledge", "\(harness.base)/auth%2flogin"]).status, 400)
        try waitForRecorded(4)
        let seen = try recorded()
        XCTAssertEqual(seen.map { $0["target"] as? String }, ["/get", "/delete", "/options", "/purge"])
        for request in seen {
            XCTAssertEqual(request["body"] as? String, "GET /auth/admin HTTP/1.1\r\nHost: x\r\n\r\n")
        }
        // An identity part sent twice, a name aliasing the gateway's own, segment parameters.
        let plain = ["--http2-prior-knowledge", "--path-as-is"]
        XCTAssertEqual(try curl(plain + ["-H", "X-API-Key: a", "-H", "X-API-Key: b", "\(harness.base)/keyed/x"]).status, 400)
        XCTAssertEqual(try curl(plain + ["-H", "X-API-Key: k", "-H", "X_Forwarded_For: 6.6.6.6", "\(harness.base)/keyed/y"]).status, 200)
        XCTAssertEqual(try curl(plain + ["\(harness.base)/auth;x=1/login"]).status, 200)
        XCTAssertEqual(try curl(plain + ["\(harness.base)/public/..;/auth/login"]).status, 429, "the auth route's one request is spent")
        try waitForRecorded(6)
        let later = try recorded().dropFirst(4)
        XCTAssertEqual(later.map { $0["target"] as? String }, ["/keyed/y", "/auth;x=1/login"])
        let headers = try XCTUnwrap(later.first?["headers"] as? [[String]])
        XCTAssertFalse(headers.contains { $0[0].contains("_") }, "\(headers)")
        XCTAssertEqual(headers.first { $0[0].lowercased() == "x-forwarded-for" }?[1], "127.0.0.1")
    }

    /// A plain CONNECT over HTTP/2 (only `:method` and `:authority`, RFC 9113 8.5) is well
    /// formed, so it is answered as over HTTP/1.1: 405, its tunnel's DATA never forwarded; the
    /// connection's other streams go on.
    func testAConnectOverHTTP2IsRefusedAndItsTunnelNeverOpens() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        let result = try runProgram(
            "/usr/bin/env", ["python3", interopScript("h2_connect.py"), String(harness.proxyPort), "127.0.0.1:\(recorderPort)"],
            stdoutOnly: true
        )
        XCTAssertTrue(result.output.contains("connect status=405\n"), result.output)
        XCTAssertTrue(result.output.contains("after status=200\n"), result.output)
        try waitForRecorded(1)
        XCTAssertEqual(try targets(), ["/after"])
    }

    func testTraceIsRefusedAndConnectClosesTheConnection() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let trace = try exchange(harness, "TRACE / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statuses(trace), [405, 200], trace)
        let connect = try exchange(harness, "CONNECT 127.0.0.1:\(recorderPort) HTTP/1.1\r\nHost: a\r\n\r\nGET /tunnelled HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(statuses(connect), [405], connect)
        XCTAssertTrue(connect.lowercased().contains("connection: close"), connect)
        try waitForRecorded(1)
        XCTAssertEqual(try targets(), ["/after"])
    }

    func testAmbiguousOrUnsupportedFramingIsRefusedBeforeTheUpstream() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let cases: [(String, Int)] = [
            ("Content-Length: 5\r\nTransfer-Encoding: chunked", 400),
            ("Transfer-Encoding: chunked\r\nContent-Length: 5", 400),
            ("Content-Length: 5\r\nContent-Length: 5", 400),
            ("Content-Length: 5\r\nContent-Length: 6", 400),
            ("Content-Length: +5", 400),
            ("Content-Length : 5", 400),
            ("Transfer-Encoding : chunked", 400),
            ("X: 1\r\n Transfer-Encoding: chunked", 400),
            ("X: 1\rTransfer-Encoding: chunked", 400),
            ("Transfer-Encoding: gzip", 501),
            ("Transfer-Encoding: gzip, chunked", 501),
            ("Transfer-Encoding: chunked, identity", 501),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 501),
            ("Transfer-Encoding: \u{0B}chunked", 400),
        ]
        for (headers, status) in cases {
            let answer = try exchange(harness, "POST / HTTP/1.1\r\nHost: a\r\n\(headers)\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            XCTAssertEqual(statuses(answer), [status], "\(headers.debugDescription): \(answer)")
            XCTAssertTrue(answer.lowercased().contains("connection: close"), answer)
        }
        XCTAssertEqual(statuses(try exchange(harness, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")), [200], "a plain request still works")
        try waitForRecorded(1)
        XCTAssertEqual(try targets(), ["/"])
    }

    /// A request the gateway answers itself (a denial, a TRACE) may still carry a body: it is
    /// read to the end its framing gives and dropped, so that the request after it on the
    /// connection is the next one served, and nothing inside the body reaches the upstream.
    func testTheBodyOfARequestTheGatewayAnswersIsDroppedAndTheNextRequestServed() throws {
        let harness = try gateway()
        defer { harness.stop() }
        XCTAssertEqual(statuses(try exchange(harness, "GET /auth/first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")), [200])
        let smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
        let chunked = String(smuggled.utf8.count, radix: 16) + "\r\n" + smuggled + "\r\n0\r\n\r\n"
        let length = "Content-Length: \(smuggled.utf8.count)\r\n\r\n"
        let shapes: [(request: String, status: Int)] = [
            ("POST /auth/login HTTP/1.1\r\nHost: a\r\n\(length)\(smuggled)", 429),
            ("POST /auth/login HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\(chunked)", 429),
            ("TRACE /x HTTP/1.1\r\nHost: a\r\n\(length)\(smuggled)", 405),
            ("TRACE /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\(chunked)", 405),
        ]
        for (index, shape) in shapes.enumerated() {
            let next = "GET /after/\(index) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            let answer = try exchange(harness, shape.request + next)
            XCTAssertEqual(statuses(answer), [shape.status, 200], "\(shape.request.debugDescription): \(answer)")
        }
        try waitForRecorded(1 + shapes.count)
        XCTAssertEqual(try targets(), ["/auth/first"] + shapes.indices.map { "/after/\($0)" })
    }

    /// A client refused while it is still uploading reads its refusal (a 501, a GOAWAY) and the
    /// end of the connection, not a reset: the gateway stops writing, reads and drops what still
    /// arrives, and lets go once the client closes or a few seconds pass. Closed with unread
    /// input, the connection was reset, and the upload failed before the client read the answer.
    func testARefusedClientStillUploadingReadsItsRefusalAndIsThenLetGo() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        for (protocolName, answer) in [("http1", "HTTP/1.1 501 Not Implemented"), ("h2c", "goaway=6")] {
            let run = try runProgram(
                "/usr/bin/env",
                ["python3", interopScript("refused_upload.py"), String(harness.proxyPort), protocolName],
                stdoutOnly: true
            )
            XCTAssertTrue(run.output.contains("sent=all answer=\(answer) end=fin\n"), run.output)
            // A client that never closes its side is let go all the same.
            XCTAssertTrue(run.output.contains("\nreleased "), run.output)
        }
        XCTAssertEqual(try recorded().count, 0, "nothing uploaded after a refusal is forwarded")
    }

    /// A line ended by LF alone, in a head, a chunk line or a trailer section, is answered 400
    /// and the connection closed as it arrives: the CRLF the gateway reads lines by will never
    /// come, and waiting for it held the connection (and a chunked request's upstream) until
    /// the idle timeout.
    func testALineEndedByLFAloneIsAnsweredAtOnce() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let heads = ["GET / HTTP/1.1\r\nHost: a\r\n\n", "GET / HTTP/1.1\nHost: a\n\n", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\n\r\n"]
        let chunked = "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        let bodies = [chunked + "5\nhello", chunked + "5\r\nhello\r\n0\r\n\n", chunked + "0\r\nX-T: 1\n"]
        for request in heads + bodies {
            // Well within the idle timeout (60 s): only an answer to what was sent ends it sooner.
            let answer = try exchange(harness, request, timeout: 10)
            XCTAssertEqual(statuses(answer), [400], "\(request.debugDescription): \(answer)")
            XCTAssertTrue(answer.lowercased().contains("connection: close"), answer)
        }
        XCTAssertFalse(try targets().contains("/"), "no head with a bare LF reached the upstream")
    }

    func testAChunkedBodyIsDecodedAndFramedAgainByTheGateway() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let answer = try exchange(
            harness,
            "POST /upload HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: CHUNKED\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
        XCTAssertEqual(statuses(answer), [200], answer)
        try waitForRecorded(1)
        let request = try XCTUnwrap(try recorded().first)
        XCTAssertEqual(request["body"] as? String, "hello world")
        let head = try XCTUnwrap(request["head"] as? String)
        XCTAssertTrue(head.contains("transfer-encoding: chunked\r\n"), head)
        XCTAssertFalse(head.contains("CHUNKED"), head)
    }

    func testAValidRequestFollowedByGarbageGetsItsOwnAnswerFirst() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let answer = try exchange(harness, "POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokNOT HTTP AT ALL\r\n\r\n")
        XCTAssertEqual(statuses(answer), [200, 400], answer)
        XCTAssertTrue(answer.contains("request 1"), answer)
        let pipelined = try exchange(harness, "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/9.9\r\n\r\n")
        XCTAssertEqual(statuses(pipelined), [200, 200, 505], pipelined)
        try waitForRecorded(3)
        XCTAssertEqual(try targets(), ["/first", "/a", "/b"])
    }

    func testHostRules() throws {
        let harness = try gateway()
        defer { harness.stop() }
        for head in ["GET / HTTP/1.1\r\n", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n", "GET / HTTP/1.1\r\nHost: a b\r\n",
            "GET / HTTP/1.1\r\nHost: a/b\r\n", "GET / HTTP/1.1\r\nHost: a@b\r\n", "GET / HTTP/1.1\r\nHost:\r\n",
            "GET http://user@admin.example/ HTTP/1.1\r\nHost: a\r\n", "GET / HTTP/1.1\r\nHost: a:65536\r\n",
            // A name with an empty label: read as admin.example by an upstream that trims dots.
            "GET / HTTP/1.1\r\nHost: admin.example..\r\n", "GET http://admin..example/ HTTP/1.1\r\nHost: a\r\n",
            "GET / HTTP/1.1\r\nHost: ADMIN.Example..:80\r\n", "GET / HTTP/1.1\r\nHost: \t admin.example.. \t\r\n",
            // An escaped name: read as admin.example by an upstream whose URL parser decodes it.
            "GET / HTTP/1.1\r\nHost: admin%2Eexample\r\n", "GET http://%61dmin.example/ HTTP/1.1\r\nHost: a\r\n",
            // An IPv4 address spelled as such a parser reads as another (127.0.0.1, 8.0.0.1).
            "GET / HTTP/1.1\r\nHost: 127.1\r\n", "GET / HTTP/1.1\r\nHost: 0x7f.0.0.1:80\r\n", "GET / HTTP/1.1\r\nHost: 010.0.0.1\r\n",
            "GET / HTTP/1.1\r\nHost: [1::2::3]\r\n"]
        {
            XCTAssertEqual(statuses(try exchange(harness, head + "\r\n")), [400], head.debugDescription)
        }
        // HTTP/1.0 may omit Host; HTTP/1.2 is served as 1.1.
        XCTAssertEqual(try exchange(harness, "GET /old HTTP/1.0\r\n\r\n").prefix(12), "HTTP/1.0 200")
        XCTAssertEqual(statuses(try exchange(harness, "GET /newer HTTP/1.2\r\nHost: a\r\nConnection: close\r\n\r\n")), [200])
        // The absolute-form authority wins over Host, for routing and for the upstream; a trailing
        // dot names the same host. Both land on the admin route's limit of one.
        XCTAssertEqual(statuses(try exchange(harness, "GET http://admin.example/x HTTP/1.1\r\nHost: public.example\r\nConnection: close\r\n\r\n")), [200])
        XCTAssertEqual(statuses(try exchange(harness, "GET /y HTTP/1.1\r\nHost: Admin.Example.:80\r\nConnection: close\r\n\r\n")), [429])
        try waitForRecorded(3)
        let seen = try recorded()
        XCTAssertEqual(seen.map { $0["target"] as? String }, ["/old", "/newer", "/x"])
        let headers = try XCTUnwrap(seen.last?["headers"] as? [[String]])
        XCTAssertEqual(headers.filter { $0[0].lowercased() == "host" }.map { $0[1] }, ["admin.example"])
        // A host found valid earlier on the connection vouches only for the same bytes: not for
        // a spelling String's `==` holds equal (a Kelvin sign for `K`).
        let kelvin = "GET /k HTTP/1.1\r\nHost: K.example\r\n\r\nGET /k HTTP/1.1\r\nHost: \u{212A}.example\r\n\r\n"
        XCTAssertEqual(statuses(try exchange(harness, kelvin)), [200, 400])
    }

    func testEncodedSlashesNeverLeaveTheAuthRoute() throws {
        let harness = try gateway()
        defer { harness.stop() }
        XCTAssertEqual(statuses(try exchange(harness, "POST /auth/login HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")), [200])
        for path in ["/auth%2flogin", "/auth%2Flogin", "/auth%5clogin", "/auth%5Clogin", "/auth\\login", "/x/..%2fauth/login", "/auth/%2e%2e%2flogin"] {
            let answer = try exchange(harness, "POST \(path) HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            XCTAssertEqual(statuses(answer), [400], "\(path): \(answer)")
        }
        // Encoded unreserved characters are decoded for matching, and segment parameters (which
        // a servlet container strips before routing) left out: still the auth route.
        for path in ["/%61uth/login", "/auth;x=1/login", "/public/..;/auth/login", "/auth/login;.css"] {
            let answer = try exchange(harness, "POST \(path) HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            XCTAssertEqual(statuses(answer), [429], "\(path): \(answer)")
        }
        try waitForRecorded(1)
        XCTAssertEqual(try targets(), ["/auth/login"])
    }

    /// Express and ASP.NET Core route `/AUTH/login` as `/auth/login`; the router, matching
    /// prefixes as written, would send it to the catch-all route's limits. A path whose route
    /// depends on letter case is refused; one whose route does not is served as sent.
    func testLetterCaseNeverMovesARequestToAnotherRoute() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        let overHTTP2 = try runProgram("/usr/bin/env", ["python3", interopScript("h2_fields.py"), String(harness.proxyPort), "/AUTH/login"], stdoutOnly: true)
        XCTAssertEqual(overHTTP2.output, "status=400\n")
        for path in ["/AUTH/login", "/Auth/login", "/%41uth/login", "/KEYED/x"] {
            let answer = try exchange(harness, "POST \(path) HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            XCTAssertEqual(statuses(answer), [400], "\(path): \(answer)")
        }
        XCTAssertEqual(statuses(try exchange(harness, "GET /Images/Logo.png HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")), [200])
        XCTAssertEqual(statuses(try exchange(harness, "POST /auth/Login HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")), [200])
        try waitForRecorded(2)
        XCTAssertEqual(try targets(), ["/Images/Logo.png", "/auth/Login"])
    }

    /// A request that names another method for itself (served as that method by Rails, Symfony,
    /// Laravel, ASP.NET Core and Express) is refused when that method has another route, in any
    /// spelling those upstreams read; one whose named method is routed where its own is goes on.
    func testAMethodARequestNamesForItselfNeverMovesItToAnotherRoute() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        let overHTTP2 = try runProgram(
            "/usr/bin/env", ["python3", interopScript("h2_fields.py"), String(harness.proxyPort), "/items/1", "x-http-method-override:DELETE"], stdoutOnly: true
        )
        XCTAssertEqual(overHTTP2.output, "status=400\n")
        let refused = [
            ("/items/1", "X-HTTP-Method-Override: DELETE\r\n"),
            ("/items/1", "x_http_method_override: delete\r\n"),
            ("/items/1", "X-HTTP-Method: DELETE\r\n"),
            ("/items/1", "X-Method-Override: \t Delete , POST\r\n"),
            ("/items/1", "X-HTTP-Method-Override: PUT\r\nX-HTTP-Method-Override: DELETE\r\n"),
            ("/items/1?_method=DELETE", ""),
            ("/items/1?a=1&%5Fmethod=delete", ""),
            ("/items/1?.method=DELETE", ""),
            ("/ITEMS/1", "X-HTTP-Method-Override: DELETE\r\n"),
        ]
        for (target, field) in refused {
            let answer = try exchange(harness, "POST \(target) HTTP/1.1\r\nHost: a\r\n\(field)Content-Length: 0\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(statuses(answer), [400], "\(target) \(field.debugDescription): \(answer)")
        }
        let served = [
            "POST /items/1 HTTP/1.1\r\nHost: a\r\nX-HTTP-Method-Override: PUT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "POST /other?_method=DELETE HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "DELETE /items/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        ]
        for request in served {
            XCTAssertEqual(statuses(try exchange(harness, request)), [200], request)
        }
        try waitForRecorded(served.count)
        XCTAssertEqual(try targets(), ["/items/1", "/other?_method=DELETE", "/items/1"])
    }

    /// An upstream trusts its proxy's forwarding fields; a client's own go on only when its peer
    /// is a trusted proxy, `X-Real-IP` is the address the limiter counted, and a path override
    /// (which older Symfony and Zend upstreams route by) never goes on.
    func testWhatAClientClaimsAProxySawReachesTheUpstreamOnlyFromATrustedProxy() throws {
        let claims = "Forwarded: for=6.6.6.6;host=admin.example\r\nX-Real-IP: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\n"
            + "X-Original-URL: /auth/login\r\nX-Rewrite-URL: /auth/login\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Ssl: on\r\n"
            + "Client-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nX-Other: kept\r\n"
        func forwarded(server: String) throws -> [[String]] {
            let harness = try gateway(server: server)
            defer { harness.stop() }
            let before = try recorded().count
            XCTAssertEqual(statuses(try exchange(harness, "GET /claims HTTP/1.1\r\nHost: a\r\n\(claims)Connection: close\r\n\r\n")), [200])
            try waitForRecorded(before + 1)
            return try XCTUnwrap(try recorded().last?["headers"] as? [[String]])
        }
        let untrusted = try forwarded(server: "")
        XCTAssertEqual(untrusted.map { $0[0] }, ["X-Other", "host", "x-forwarded-for", "x-real-ip", "x-forwarded-proto", "x-forwarded-host"])
        XCTAssertEqual(untrusted.first { $0[0] == "x-real-ip" }?[1], "127.0.0.1")
        let trusted = try forwarded(server: "trusted_proxies = [\"127.0.0.1/32\"]")
        XCTAssertEqual(trusted.map { $0[0] }, [
            "Forwarded", "X-Forwarded-Port", "X-Forwarded-Ssl", "Client-IP", "X-Other", "host", "x-forwarded-for", "x-real-ip", "x-forwarded-proto",
            "x-forwarded-host",
        ])
        XCTAssertEqual(trusted.first { $0[0] == "x-real-ip" }?[1], "6.6.6.6", "the address the trusted proxy forwarded for")
    }

    /// `Connection` names the fields its sender's hop adds; the gateway's own are its hop's, so a
    /// client naming them takes out only its own copies (in any case, padded, repeated).
    func testFieldsTheGatewaySetsSurviveAClientNamingThemInConnection() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let connection = "Connection: X-Real-IP, x-forwarded-for\r\nConnection: \t X-FORWARDED-PROTO ,, x-forwarded-host , host, close\r\n"
        let claims = "X-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n"
        let answer = try exchange(harness, "GET /named HTTP/1.1\r\nHost: a\r\n\(connection)\(claims)\r\n")
        XCTAssertEqual(statuses(answer), [200], answer)
        try waitForRecorded(1)
        let headers = try XCTUnwrap(try recorded().first?["headers"] as? [[String]])
        XCTAssertEqual(headers, [
            ["host", "a"], ["x-forwarded-for", "127.0.0.1"], ["x-real-ip", "127.0.0.1"], ["x-forwarded-proto", "http"], ["x-forwarded-host", "a"],
        ])
    }

    func testNobodyIsTrustedToForwardForClientsByDefault() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let first = try exchange(harness, "GET /auth/a HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.1\r\nConnection: close\r\n\r\n")
        let second = try exchange(harness, "GET /auth/b HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.2\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statuses(first) + statuses(second), [200, 429], "both are 127.0.0.1, whatever they claim")
    }

    func testNamesAnUpstreamReadsAsTheGatewaysOwnFieldsAreNotForwarded() throws {
        let harness = try gateway()
        defer { harness.stop() }
        // A CGI-style upstream reads `_` as `-`: these would be the gateway's own fields to it.
        let aliases = "X_Forwarded_For: 6.6.6.6\r\nX-Forwarded_Proto: https\r\nx_forwarded_host: evil\r\n"
            + "Content_Length: 99\r\nTransfer_Encoding: chunked\r\nX_API_Key: victim\r\nX_Custom: kept\r\n"
        let answer = try exchange(harness, "GET /keyed/a HTTP/1.1\r\nHost: a\r\nX-API-Key: mine\r\n\(aliases)Connection: close\r\n\r\n")
        XCTAssertEqual(statuses(answer), [200], answer)
        try waitForRecorded(1)
        let headers = try XCTUnwrap(try recorded().first?["headers"] as? [[String]])
        let names = headers.map { $0[0].lowercased() }
        XCTAssertEqual(names.filter { $0.contains("_") }, ["x_custom"], "\(headers)")
        XCTAssertEqual(headers.first { $0[0].lowercased() == "x-forwarded-for" }?[1], "127.0.0.1")
        XCTAssertEqual(headers.first { $0[0] == "X-API-Key" }?[1], "mine", "the identity's own field goes on")
    }

    /// HTTP/2's `:authority` is held to the Host rules: an escaped or empty-labelled name is
    /// answered 400 on its stream and reaches no upstream; a plain one is served.
    func testHTTP2AuthorityFollowsTheHostRules() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        for authority in ["admin%2eexample", "%61dmin.example:80", "admin.example.."] {
            let result = try runProgram("/usr/bin/env", ["python3", interopScript("h2_fields.py"), String(harness.proxyPort), "/escaped", ":authority:\(authority)"], stdoutOnly: true)
            XCTAssertEqual(result.output, "status=400\n", authority)
        }
        let plain = try runProgram("/usr/bin/env", ["python3", interopScript("h2_fields.py"), String(harness.proxyPort), "/plain", ":authority:Admin.Example"], stdoutOnly: true)
        XCTAssertEqual(plain.output, "status=200\n")
        try waitForRecorded(1)
        XCTAssertEqual(try recorded().map { $0["target"] as? String }, ["/plain"])
    }

    /// A browser sends each cookie as a field of its own over HTTP/2; an HTTP/1.1 upstream reads
    /// one Cookie line (often only the first of several), so they reach it as one (RFC 9113,
    /// 8.2.3).
    func testCookieCrumbsReachAnHTTP1UpstreamAsOneLine() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        let fields = ["cookie:session=abc", "accept:*/*", "cookie:theme=dark", "cookie:lang=en"]
        let result = try runProgram("/usr/bin/env", ["python3", interopScript("h2_fields.py"), String(harness.proxyPort), "/cookies"] + fields, stdoutOnly: true)
        XCTAssertEqual(result.output, "status=200\n")
        try waitForRecorded(1)
        let head = try XCTUnwrap(try recorded().first?["head"] as? String)
        let cookies = head.components(separatedBy: "\r\n").filter { $0.lowercased().hasPrefix("cookie:") }
        XCTAssertEqual(cookies, ["cookie: session=abc; theme=dark; lang=en"], head)
    }

    /// Obs-text (bytes 0x80 to 0xFF that are not UTF-8) in a value sent over HTTP/2 reaches the
    /// HTTP/1.1 upstream as those bytes, not as U+FFFD (Huffman-coded ones: HPACKFieldDecoderTests).
    func testHeaderValuesSentOverHTTP2ReachTheUpstreamAsTheirBytes() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        let fields = [#"x-obs:caf\xe9 \xff end"#, "x-utf8:café"]
        let result = try runProgram("/usr/bin/env", ["python3", interopScript("h2_fields.py"), String(harness.proxyPort), "/obs"] + fields, stdoutOnly: true)
        XCTAssertEqual(result.output, "status=200\n")
        try waitForRecorded(1)
        // The recording upstream keeps the head as Latin-1: one character per byte.
        let head = try XCTUnwrap(try recorded().first?["head"] as? String)
        XCTAssertTrue(head.contains("x-obs: caf\u{E9} \u{FF} end\r\n"), head)
        XCTAssertTrue(head.contains("x-utf8: caf\u{C3}\u{A9}\r\n"), head)
    }

    func testTrailersCarryNothingTheHeadDecides() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        // Framing, routing, the gateway's own fields and the identity's, under any name an
        // upstream reads as one of them: an upstream that merges trailers into the head would
        // take them for the fields the gateway decided on.
        let decided = "X-Forwarded-For: 6.6.6.6\r\nX_Forwarded_Proto: https\r\nx-forwarded-host: evil\r\nContent-Length: 9\r\n"
            + "Content_Length: 9\r\nTransfer-Encoding: chunked\r\nHost: evil\r\nExpect: 100-continue\r\nTE: trailers\r\n"
            + "Connection: close\r\nX-Hop: 1\r\nX-API-Key: victim\r\nx_api_key: victim\r\n"
        let answer = try exchange(
            harness,
            "POST /keyed/a HTTP/1.1\r\nHost: a\r\nX-API-Key: mine\r\nTransfer-Encoding: chunked\r\nConnection: close, X-Hop\r\n\r\n"
                + "5\r\nhello\r\n0\r\n\(decided)X-Checksum: abc\r\n\r\n"
        )
        XCTAssertEqual(statuses(answer), [200], answer)
        try waitForRecorded(1)
        let request = try XCTUnwrap(try recorded().first)
        XCTAssertEqual(request["body"] as? String, "hello")
        XCTAssertEqual(request["trailers"] as? [[String]], [["X-Checksum", "abc"]])

        // The same over HTTP/2, to the same HTTP/1.1 upstream.
        let fields = ["x-forwarded-for:6.6.6.6", "x_forwarded_proto:https", "x-api-key:victim", "x_api_key:victim", "x-checksum:abc"]
        let result = try runProgram("/usr/bin/env", ["python3", interopScript("h2_trailers.py"), String(harness.proxyPort), "/keyed/b"] + fields, stdoutOnly: true)
        XCTAssertEqual(result.output, "headers\n")
        try waitForRecorded(2)
        let overHTTP2 = try XCTUnwrap(try recorded().last)
        XCTAssertEqual(overHTTP2["target"] as? String, "/keyed/b")
        XCTAssertEqual(overHTTP2["body"] as? String, "hello")
        XCTAssertEqual(overHTTP2["trailers"] as? [[String]], [["x-checksum", "abc"]])
    }

    func testAMethodInLowerCaseIsRefused() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        // To an upstream that folds methods to upper case, `post` on a route matched as not
        // POST would be a POST its route did not limit.
        for method in ["get", "post", "Get", "trace", "head"] {
            let answer = try exchange(harness, "\(method) /auth/login HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(statuses(answer), [400, 200], "\(method): \(answer)")
            XCTAssertTrue(answer.contains("upper case"), answer)
        }
        XCTAssertEqual(try curl(["--http2-prior-knowledge", "-X", "post", "\(harness.base)/auth/login"]).status, 400)
        XCTAssertEqual(try curl(["--http2-prior-knowledge", "-X", "PURGE", "\(harness.base)/purge"]).status, 200)
        try waitForRecorded(6)
        XCTAssertEqual(try targets(), Array(repeating: "/after", count: 5) + ["/purge"])
    }

    func testAnIdentityPartSentTwiceIsRefused() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let keyed = try exchange(harness, "GET /keyed/a HTTP/1.1\r\nHost: a\r\nX-API-Key: fresh\r\nx-api-key: real\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statuses(keyed), [400], keyed)
        XCTAssertTrue(keyed.contains("X-API-Key header is sent more than once"), keyed)
        let query = try exchange(harness, "GET /by-query/a?api_key=fresh&api_key=real HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statuses(query), [400], query)
        // Each key once: its own budget of one.
        for (key, expected) in [("real", 200), ("real", 429), ("other", 200)] {
            let answer = try exchange(harness, "GET /by-query/a?api_key=\(key) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(statuses(answer), [expected], answer)
        }
        // A fragment is no part of the query the upstream reads (some read past a `#`), nor of
        // the key counted: dropped, with a `?` inside it (the last request is counted by its
        // client's address, as the route falls back to it, not as `frag`, which is spent).
        for (target, expected) in [("/by-query/b?api_key=frag#&api_key=victim", 200), ("/by-query/c?api_key=frag", 429), ("/by-query/d#?api_key=frag", 200)] {
            let answer = try exchange(harness, "GET \(target) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(statuses(answer), [expected], answer)
        }
        try waitForRecorded(4)
        XCTAssertEqual(try targets(), ["/by-query/a?api_key=real", "/by-query/a?api_key=other", "/by-query/b?api_key=frag", "/by-query/d"])
    }

    func testAnIdentityPaddedWithWhitespaceIsTheSameIdentity() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        // An upstream drops the whitespace around a value: a padded key is the same key, with
        // the same budget of one, over either protocol.
        let first = try exchange(harness, "GET /keyed/a HTTP/1.1\r\nHost: a\r\nX-API-Key: padded\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statuses(first), [200], first)
        for padding in ["padded ", " padded", "\\x09padded\\x09", "padded \\x09 "] {
            let result = try runProgram(
                "/usr/bin/env", ["python3", interopScript("h2_fields.py"), String(harness.proxyPort), "/keyed/b", "x-api-key:\(padding)"], stdoutOnly: true
            )
            XCTAssertEqual(result.output, "status=429\n", padding)
        }
        let padded = try exchange(harness, "GET /keyed/c HTTP/1.1\r\nHost: a\r\nX-API-Key: \tpadded \r\nConnection: close\r\n\r\n")
        XCTAssertEqual(statuses(padded), [429], padded)
        try waitForRecorded(1)
        XCTAssertEqual(try targets(), ["/keyed/a"])
    }

    func testHeaderValuesAreForwardedAsTheBytesReceived() throws {
        let harness = try gateway()
        defer { harness.stop() }
        var request = Array("GET /obs HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Name: caf".utf8)
        request += [0xE9, 0x20, 0xFF, 0x80]
        request += Array("\r\nX-Utf8: caf\u{e9}\r\n\r\n".utf8)
        XCTAssertEqual(statuses(try rawExchange(port: harness.proxyPort, request, timeout: 3)), [200])
        try waitForRecorded(1)
        let headers = try XCTUnwrap(try recorded().first?["headers"] as? [[String]])
        // Decoded as latin-1 by the recorder: one character per byte received.
        XCTAssertEqual(headers.first { $0[0] == "X-Name" }?[1], "caf\u{e9} \u{ff}\u{80}")
        XCTAssertEqual(headers.first { $0[0] == "X-Utf8" }?[1], "caf\u{c3}\u{a9}")
    }

    func testBytesAnUpstreamSendsOutOfTurnNeverReachAnotherClient() throws {
        let harness = try gateway()
        defer { harness.stop() }
        for extra in ["/extra", "/extra-partial"] {
            XCTAssertEqual(statuses(try exchange(harness, "GET \(extra) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")), [200])
            for _ in 0..<5 {
                let answer = try exchange(harness, "GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                XCTAssertEqual(statuses(answer), [200], answer)
                XCTAssertFalse(answer.contains("evil"), answer)
                XCTAssertTrue(answer.contains("request "), answer)
            }
            // The next request at once, pipelined: the spoiled connection is not leased to it.
            let pipelined = try exchange(harness, "GET \(extra) HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(statuses(pipelined), [200, 200], pipelined)
            XCTAssertFalse(pipelined.contains("evil"), pipelined)
        }
    }

    func testAnUpstreamsAnswerReachesClientsOfEitherProtocolOnlyAsItsFramingAllows() throws {
        let harness = try gateway(server: "h2c = true")
        defer { harness.stop() }
        for version in ["--http1.1", "--http2-prior-knowledge"] {
            // A 204 stating a length: curl over HTTP/2 (nghttp2) resets such a stream.
            let noContent = try runProgram("/usr/bin/curl", ["-s", "-S", "-i", "--max-time", "5", version, "\(harness.base)/no-content"])
            XCTAssertEqual(noContent.status, 0, noContent.output)
            XCTAssertTrue(noContent.output.hasPrefix("HTTP/1.1 204") || noContent.output.hasPrefix("HTTP/2 204"), noContent.output)
            XCTAssertFalse(noContent.output.lowercased().contains("content-length"), noContent.output)

            // Trailers naming framing and routing fields: only the others reach the client.
            let trailers = try runProgram("/usr/bin/curl", ["-s", "-S", "-i", "--max-time", "5", version, "\(harness.base)/with-trailers"])
            XCTAssertEqual(trailers.status, 0, trailers.output)
            let lowered = trailers.output.lowercased()
            XCTAssertTrue(lowered.contains("x-checksum: abc"), trailers.output)
            XCTAssertFalse(lowered.contains("content-length") || lowered.contains("host: evil"), trailers.output)
        }
        // A status code below 100 is no interim answer to wait past: the upstream's error, at once.
        XCTAssertEqual(statuses(try exchange(harness, "GET /status-099 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")), [502])
        XCTAssertEqual(statuses(try exchange(harness, "GET /status-599 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")), [599])
    }

    /// Requests carrying a request in their bodies, mutated at random (fixed seeds,
    /// Tests/interop/framing_mutations.py): whatever the mutation, the upstream reads no request
    /// the access log does not show forwarded, and reads only bytes it can frame.
    func testMutatedRequestsReachTheUpstreamOnlyAsTheGatewayRoutedThem() throws {
        let harness = try GatewayHarness(
            rateSync: limits, routes: routes, upstreamURL: "http://127.0.0.1:\(recorderPort)",
            gatewayExtras: "[access_log]\nenabled = true\npath = \"access.log\""
        )
        defer { harness.stop() }
        let accessLog = harness.directory.appendingPathComponent("access.log").path
        for seed in 1...2 {
            let run = try runProgram(
                "/usr/bin/env",
                ["python3", interopScript("framing_mutations.py"), "requests", String(harness.proxyPort), logPath, accessLog, String(seed), "200"],
                stdoutOnly: true
            )
            XCTAssertEqual(run.status, 0, "seed \(seed): \(run.output)")
            XCTAssertTrue(run.output.contains("cases=200 "), run.output)
            // Enough of the mutations still make requests for the run to mean something.
            let forwarded = Int(run.output.components(separatedBy: "forwarded=").last?.prefix { $0.isNumber } ?? "") ?? 0
            XCTAssertGreaterThan(forwarded, 40, run.output)
        }
        XCTAssertTrue(harness.gateway.isRunning, harness.gateway.text)
        XCTAssertEqual(statuses(try exchange(harness, "GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")), [200])
    }

    /// The same over HTTP/2 (prior knowledge): a request whose fields are mutated (CR, LF, NUL
    /// and a whole request inserted into names and values; connection-specific, framing and
    /// pseudo-header fields added; fields dropped), its body a whole request: the upstream reads
    /// no request the access log does not show forwarded.
    func testMutatedHTTP2RequestsReachTheUpstreamOnlyAsTheGatewayRoutedThem() throws {
        let harness = try GatewayHarness(
            rateSync: limits, routes: routes, server: "h2c = true", upstreamURL: "http://127.0.0.1:\(recorderPort)",
            gatewayExtras: "[access_log]\nenabled = true\npath = \"access.log\""
        )
        defer { harness.stop() }
        let accessLog = harness.directory.appendingPathComponent("access.log").path
        let run = try runProgram(
            "/usr/bin/env",
            ["python3", interopScript("framing_mutations.py"), "h2requests", String(harness.proxyPort), logPath, accessLog, "1", "300"],
            stdoutOnly: true
        )
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("cases=300 "), run.output)
        let forwarded = Int(run.output.components(separatedBy: "forwarded=").last?.prefix { $0.isNumber } ?? "") ?? 0
        XCTAssertGreaterThan(forwarded, 10, run.output)
        XCTAssertTrue(harness.gateway.isRunning, harness.gateway.text)
    }

    /// An upstream answering with mutated responses, most followed by a whole unsolicited one:
    /// clients sending two requests in turn, over HTTP/1.1 or on two streams of an HTTP/2
    /// connection, are never handed the unsolicited response, and every HTTP/1.1 answer reads
    /// as HTTP/1.1.
    func testMutatedAnswersNeverHandAClientAnotherAnswer() throws {
        let (upstream, upstreamPort) = try startInteropServer("framing_mutations.py", ["upstream", "1"])
        defer { upstream.stop() }
        let harness = try GatewayHarness(rateSync: limits, routes: routes, server: "h2c = true", upstreamURL: "http://127.0.0.1:\(upstreamPort)")
        defer { harness.stop() }
        for (mode, cases) in [("responses", 300), ("h2responses", 200)] {
            let run = try runProgram(
                "/usr/bin/env", ["python3", interopScript("framing_mutations.py"), mode, String(harness.proxyPort), String(cases)], stdoutOnly: true
            )
            XCTAssertEqual(run.status, 0, "\(mode): \(run.output)")
            XCTAssertTrue(run.output.contains("cases=\(cases) failures=0"), "\(mode): \(run.output)")
        }
        XCTAssertTrue(harness.gateway.isRunning, harness.gateway.text)
    }

    func testHeadsAndUpgradesCannotMakeTheGatewayBufferWithoutBound() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let before = harness.gateway.memory().rss
        let flood: [(String, String, String)] = [
            // A header value preceded by spaces: 431 once the head passes max_header_bytes.
            ("GET / HTTP/1.1\r\nHost: a\r\nX:", " ", "HTTP/1.1 431"),
            // A request target, a field name or a trailer section that never ends: the same.
            ("GET /", "a", "HTTP/1.1 431"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX", "a", "HTTP/1.1 431"),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "X-T: a\r\n", "HTTP/1.1 431"),
            // A chunk-size line never ended (its extension growing): refused at its own bound.
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;", "a", "HTTP/1.1 400"),
            // Empty lines before a request are skipped, but only up to the same budget.
            ("", "\r\n", "HTTP/1.1 400"),
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "\r\n", "HTTP/1.1 200"),
            // Bytes after an upgrade or CONNECT request are never parked in memory.
            ("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", "x", "HTTP/1.1 200"),
            ("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "x", "HTTP/1.1 405"),
            // A body nobody is waiting for is not read past its budget.
            ("TRACE / HTTP/1.1\r\nHost: a\r\nContent-Length: 300000000\r\n\r\n", "x", "HTTP/1.1 405"),
        ]
        try assertFloodsAreAnsweredWithinBounds(flood, port: harness.proxyPort, of: harness, before: before)
        XCTAssertTrue(harness.gateway.isRunning)
    }

    /// Sends each flood (a prefix, then its filler repeated: 256 MiB offered, for at most 6 s)
    /// on a connection of its own to `port`, and checks its answer's first line and that the
    /// gateway's peak RSS stays within 32 MiB of `before`.
    private func assertFloodsAreAnsweredWithinBounds(
        _ floods: [(prefix: String, filler: String, answer: String)],
        port: Int,
        of harness: GatewayHarness,
        before: Int
    ) throws {
        func hex(_ text: String) -> String { text.utf8.map { String(format: "%02x", $0) }.joined() }
        for (prefix, filler, expected) in floods {
            let result = try runProgram(
                "/usr/bin/env",
                ["python3", interopScript("flood_client.py"), String(port), hex(prefix), hex(filler), "256", "6"],
                stdoutOnly: true
            )
            XCTAssertTrue(result.output.contains("answer=\(expected)"), "\(prefix.debugDescription): \(result.output)")
            let growth = harness.gateway.memory().peak - before
            XCTAssertLessThan(growth, 32 << 20, "\(prefix.debugDescription): peak grew \(growth >> 20) MiB; \(result.output)")
        }
    }

    /// The admin listener reads its requests with the proxy's parser, within the same bounds:
    /// floods of a head's parts are refused at `max_header_bytes` (a value preceded by endless
    /// spaces was held whole by NIO's decoder: 128 MiB offered, RSS up 128 MiB), a client that
    /// pipelines requests without reading stops being read (every request a read brought was
    /// answered into memory: 4 MiB of requests, RSS up 580 MiB), and what cannot be read is
    /// answered as on the proxy port, after the answers to the requests before it.
    func testTheAdminListenerReadsRequestsWithinTheSameBounds() throws {
        let harness = try gateway()
        defer { harness.stop() }
        let before = harness.gateway.memory().rss
        let flood: [(String, String, String)] = [
            ("GET /metrics HTTP/1.1\r\nHost: a\r\nX:", " ", "HTTP/1.1 431"),
            ("GET /", "a", "HTTP/1.1 431"),
            ("GET /healthz HTTP/1.1\r\nHost: a\r\nX", "a", "HTTP/1.1 431"),
            ("POST /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "X-T: a\r\n", "HTTP/1.1 431"),
            ("", "\r\n", "HTTP/1.1 400"),
            // Requests pipelined by a client that reads none of the answers.
            ("", "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200"),
        ]
        try assertFloodsAreAnsweredWithinBounds(flood, port: harness.adminPort, of: harness, before: before)
        func admin(_ request: String) throws -> [Int] {
            statuses(try rawExchange(port: harness.adminPort, Array(request.utf8), timeout: 3))
        }
        let healthz = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
        XCTAssertEqual(try admin(healthz + "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n" + healthz + "GARBAGE\u{1}\r\n\r\n"), [200, 200, 200, 400])
        XCTAssertEqual(try admin("POST /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), [501])
        XCTAssertEqual(try admin("POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), [400])
        XCTAssertEqual(try admin("GET /healthz HTTP/1.1\r\nHost: a\r\nX: \("b" + String(repeating: " ", count: 40_000))\r\n\r\n"), [431])
        // A HEAD's answer has no body: the answer after it is read where it starts.
        let afterHead = try rawExchange(port: harness.adminPort, Array(("HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n" + healthz).utf8), timeout: 3)
        XCTAssertEqual(statuses(afterHead), [200, 200])
        XCTAssertEqual(afterHead.components(separatedBy: "{\"status\":\"ok\"}").count, 2, afterHead)
        // A chunked body is read through to the request after it.
        XCTAssertEqual(try admin("POST /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + healthz), [405, 200])
        XCTAssertEqual(try curl(["\(harness.admin)/health/rate-limiter"]).status, 200)
        XCTAssertTrue(harness.gateway.isRunning)
    }

    /// A head whose `Connection` field lists as many names as `max_header_bytes` holds, followed
    /// by as many fields, each of which is checked against those names: it is read, routed and
    /// forwarded (without the fields it names) in time that grows with its bytes, not with its
    /// names times its fields (here 250,000 of each: about a minute of the loop, one comparison
    /// at a time, during which it serves nobody).
    func testAHeadListingThousandsOfNamesInConnectionCostsTimeInProportionToItsBytes() throws {
        let harness = try gateway(server: "max_header_bytes = 4194304")
        defer { harness.stop() }
        let count = 250_000
        let names = (0..<count).map { "x\($0)" }.joined(separator: ",")
        let fields = String(repeating: "b: 1\r\n", count: count) + "X7: named\r\n"
        let request = "GET /x HTTP/1.1\r\nHost: a\r\nConnection: \(names),close\r\n\(fields)\r\n"
        let answer = try exchange(harness, request, timeout: 20)
        XCTAssertEqual(statuses(answer), [200], String(answer.prefix(300)))
        try waitForRecorded(1)
        let headers = try XCTUnwrap(try recorded().first?["headers"] as? [[String]])
        XCTAssertEqual(headers.filter { $0.first == "b" }.count, count)
        XCTAssertFalse(headers.contains { $0.first?.lowercased() == "x7" })
        XCTAssertEqual(try curl(["\(harness.base)/x"]).status, 200)
    }

    func testATunnelToAnUpstreamThatStopsReadingBuffersABoundedAmount() throws {
        // Accepts the handshake, then never reads again.
        let stalled = try GarbageServer(reply: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        defer { stalled.stop() }
        let harness = try GatewayHarness(rateSync: limits, routes: routes, upstreamURL: "http://127.0.0.1:\(stalled.port)")
        defer { harness.stop() }
        let before = harness.gateway.memory().rss
        let handshake = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        let hex = handshake.utf8.map { String(format: "%02x", $0) }.joined()
        let result = try runProgram(
            "/usr/bin/env",
            ["python3", interopScript("flood_client.py"), String(harness.proxyPort), hex, "78", "256", "3"],
            stdoutOnly: true
        )
        XCTAssertTrue(result.output.contains("answer=HTTP/1.1 101"), result.output)
        let growth = harness.gateway.memory().peak - before
        XCTAssertLessThan(growth, 32 << 20, "peak grew \(growth >> 20) MiB; \(result.output)")
        let sent = Int(result.output.split(separator: " ").first?.dropFirst("sent=".count) ?? "") ?? 0
        XCTAssertLessThan(sent, 128 << 20, "the client was held back: \(result.output)")
    }

    /// Requests pipelined as fast as the gateway takes them, by a client that reads no answer:
    /// the gateway stops reading and serving them once the answers pile up unsent, instead of
    /// answering every request it can read into memory: neither forwarded ones (the demo
    /// upstream answers quickly) nor ones it answers itself (429s).
    func testAClientThatPipelinesWithoutReadingIsNotAnsweredWithoutBound() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes)
        defer { harness.stop() }
        let before = harness.gateway.memory().rss
        for request in ["GET /x?bytes=16000 HTTP/1.1\r\nHost: a\r\n\r\n", "GET /auth/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"] {
            let result = try runProgram(
                "/usr/bin/env",
                ["python3", interopScript("flood_client.py"), String(harness.proxyPort), "", request.utf8.map { String(format: "%02x", $0) }.joined(), "256", "6"],
                stdoutOnly: true
            )
            XCTAssertTrue(result.output.contains("answer=HTTP/1."), result.output)
            let growth = harness.gateway.memory().peak - before
            XCTAssertLessThan(growth, 32 << 20, "peak grew \(growth >> 20) MiB; \(result.output)")
        }
        XCTAssertEqual(try curl(["\(harness.base)/x"]).status, 200)
    }

    /// Requests pipelined behind one the upstream takes long to answer wait as the bytes they
    /// came in, not parsed: twenty connections sending 1 MiB of small requests each cost the
    /// gateway what it read, not a parsed request apiece (about 20 MiB).
    func testPipelinedRequestsWaitingBehindASlowOneAreHeldAsTheirBytes() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes)
        defer { harness.stop() }
        let before = harness.gateway.memory().rss
        let request = "GET /x?delay_ms=20000 HTTP/1.1\r\nHost: a\r\n\r\n"
        let clients = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", interopScript("pipelining_clients.py"), String(harness.proxyPort), "20", "1024", "4", request.utf8.map { String(format: "%02x", $0) }.joined()]
        )
        defer { clients.stop() }
        let sent = try clients.waitForLine(containing: "sent=", timeout: 15)
        XCTAssertEqual(try curl(["\(harness.base)/x"]).status, 200)
        let growth = harness.gateway.memory().peak - before
        XCTAssertLessThan(growth, 8 << 20, "peak grew \(growth >> 20) MiB; \(sent)")
    }

    /// Keep-alive connections that each carried a 1 MiB body keep little of it while idle: the
    /// buffers a connection reads into stay small, instead of growing to NIO's default ceiling
    /// and staying there.
    func testIdleConnectionsThatCarriedLargeBodiesKeepLittleMemory() throws {
        let harness = try GatewayHarness(rateSync: limits, routes: routes)
        defer { harness.stop() }
        XCTAssertEqual(try curl(["\(harness.base)/x"]).status, 200)
        let before = harness.gateway.memory().rss
        let clients = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", interopScript("idle_after_body.py"), String(harness.proxyPort), "256", String(1 << 20)]
        )
        defer { clients.stop() }
        let idle = try clients.waitForLine(containing: "idle=", timeout: 60)
        XCTAssertTrue(idle.contains("idle=256 statuses=200"), idle)
        let growth = harness.gateway.memory().rss - before
        XCTAssertLessThan(growth, 32 << 20, "256 idle connections hold \(growth >> 20) MiB; \(idle)")
    }

    /// A client that ends its side (a FIN, whether it closed or only stopped sending: TCP cannot
    /// tell) gets the answers the gateway had already made for what it sent, then the close;
    /// before, the connection closed at the FIN and dropped them unsent. What was still in
    /// flight ends at once, as nginx ends it: its slot is given back without waiting for the
    /// upstream's answer.
    func testAClientThatEndsItsSideGetsTheAnswersAlreadyMadeAndGivesBackItsSlot() throws {
        let harness = try oneRequestAtATime(server: "")
        defer { harness.stop() }
        func halfClose(_ request: String) throws -> (seconds: Double?, answer: String) {
            let hex = request.utf8.map { String(format: "%02x", $0) }.joined()
            let run = try runProgram("/usr/bin/env", ["python3", interopScript("half_close.py"), String(harness.proxyPort), hex])
            let lines = run.output.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            return (Double(lines.first ?? ""), lines.count > 1 ? String(lines[1]) : "")
        }
        let local = try halfClose("TRACE /x HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nContent-Length: nope\r\n\r\n")
        XCTAssertTrue(local.answer.hasPrefix("HTTP/1.1 405"), local.answer)
        XCTAssertTrue(local.answer.contains("HTTP/1.1 400"), "both answers, in order: \(local.answer)")
        XCTAssertLessThan(try XCTUnwrap(local.seconds), 2, "closed once they are sent")

        let started = Date()
        let slow = try halfClose("GET /slow?delay_ms=4000 HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertLessThan(try XCTUnwrap(slow.seconds), 2, "the connection closed at the FIN: \(slow.answer)")
        XCTAssertEqual(try curl(["\(harness.base)/x"]).status, 200, "the slot came back without waiting for the slow answer")
        XCTAssertLessThan(Date().timeIntervalSince(started), 3.5)
    }

    func testAClientThatStopsReadingIsClosedAndGivesBackItsSlot() throws {
        let harness = try oneRequestAtATime(server: "send_timeout_seconds = 1")
        defer { harness.stop() }
        let reader = try stalledDownloadHoldsTheSlotUntilGivenBack(harness, script: "stalled_reader.py", ["4"])
        XCTAssertTrue(reader.text.contains("closed=1"), reader.text)
        let received = Int(reader.text.components(separatedBy: "received=").last?.prefix { $0.isNumber } ?? "") ?? 0
        XCTAssertLessThan(received, 200_000_000, reader.text)
    }

    /// The same over HTTP/2, both ways a client can take nothing: a socket it never reads is
    /// closed once it has taken nothing for send_timeout_seconds, its streams with it; a stream
    /// whose window it never opens (reading the socket all along) is reset with CANCEL. Either
    /// way the slot comes back.
    func testAnHTTP2ClientThatStopsReadingGivesBackItsSlot() throws {
        let harness = try oneRequestAtATime(server: "send_timeout_seconds = 1\nh2c = true")
        defer { harness.stop() }
        for (mode, outcome) in [("socket", "closed=1"), ("window", "reset=8")] {
            let reader = try stalledDownloadHoldsTheSlotUntilGivenBack(harness, script: "h2_stalled_reader.py", [mode, "4"])
            XCTAssertTrue(reader.text.contains(outcome), "\(mode): \(reader.text)")
        }
    }

    /// The same over TLS, HTTP/1.1 and HTTP/2 (by ALPN) alike, and as soon: the slot comes back
    /// once the client has taken nothing for send_timeout_seconds, not once TLS has also waited
    /// (5 s) for the close_notify that a client which stopped reading never sends.
    func testAClientThatStopsReadingOverTLSGivesBackItsSlotAsSoon() throws {
        let certificates = try TestCertificates(commonName: "localhost")
        defer { certificates.remove() }
        let harness = try oneRequestAtATime(
            server: "send_timeout_seconds = 1",
            extras: """
                [server.tls]
                cert = "\(certificates.serverCert)"
                key = "\(certificates.serverKey)"
                """
        )
        defer { harness.stop() }
        let probe = ["--cacert", certificates.caCert, "https://localhost:\(harness.proxyPort)/x"]
        for (script, arguments, outcome) in [
            ("stalled_reader.py", ["4", "tls"], "closed=1"),
            ("h2_stalled_reader.py", ["socket", "4", "tls"], "closed=1"),
            ("h2_stalled_reader.py", ["window", "4", "tls"], "reset=8"),
        ] {
            let reader = try stalledDownloadHoldsTheSlotUntilGivenBack(
                harness,
                script: script,
                arguments,
                probe: probe,
                within: 3
            )
            XCTAssertTrue(reader.text.contains(outcome), "\(script) \(arguments): \(reader.text)")
        }
    }

    /// A gateway that lets each client one request at a time, in front of the demo upstream
    /// (which streams answers as large as asked).
    private func oneRequestAtATime(server: String, extras: String = "") throws -> GatewayHarness {
        try GatewayHarness(
            rateSync: """
                [stores.m]
                engine = "memory"
                [limiters.one_at_a_time]
                store = "m"
                max_concurrent = 1
                """,
            routes: GatewayHarness.catchAllRoute(limiters: ["one_at_a_time"]),
            server: server,
            gatewayExtras: extras
        )
    }

    /// Starts `script`, a client that asks for 200 MB and stalls (`arguments` after the port and
    /// path), checks with curl (`probe`: its arguments, the harness's /x by default) that it
    /// holds the one slot once it says its request is written, and polls until the slot is given
    /// back (once the client made no progress for send_timeout_seconds), failing if that takes
    /// more than `within` seconds.
    /// - Returns: the client, once it ended.
    private func stalledDownloadHoldsTheSlotUntilGivenBack(
        _ harness: GatewayHarness,
        script: String,
        _ arguments: [String],
        probe: [String]? = nil,
        within seconds: TimeInterval = 8
    ) throws -> ChildProcess {
        let reader = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", interopScript(script), String(harness.proxyPort), "/download?bytes=200000000"] + arguments
        )
        defer { reader.stop() }
        let label = ([script] + arguments).joined(separator: " ")
        let probe = probe ?? ["\(harness.base)/x"]
        // Once its request is written, the gateway reads it before a probe (another process,
        // with its own connection) can arrive: the slot is the reader's from then on.
        _ = try reader.waitForLine(containing: "sent", timeout: 10)
        XCTAssertEqual(try curl(probe).status, 429, "\(label): the stalled download holds the one slot")
        let deadline = Date().addingTimeInterval(seconds)
        var status = 429
        while status == 429, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            status = try curl(probe).status
        }
        XCTAssertEqual(status, 200, "\(label): the slot is back within \(seconds) s")
        _ = try reader.waitForExit(timeout: 20)
        return reader
    }
}
