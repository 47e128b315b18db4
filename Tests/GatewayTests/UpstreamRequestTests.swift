@testable import Gateway
import HTTPFieldText
import NIOCore
import NIOHTTP1
import XCTest

/// What one pass over a client's fields says (RequestFields), and the request an upstream is
/// sent from them (UpstreamRequest), byte for byte.
final class UpstreamRequestTests: XCTestCase {
    private let upstream = GatewayConfig.Upstream(
        name: "app", host: "app.internal", port: 8080, basePath: "", connectTimeoutMs: 100, responseTimeoutMs: 100, maxIdleConnections: 1
    )

    func testOnePassAnswersHostFramingConnectionAndExpect() {
        let fields = RequestFields(HTTPHeaders([
            ("HOST", "a.example"), ("Expect", "100-Continue"), ("Expect", "other"), ("content-LENGTH", "12"),
            ("Connection", "keep-alive, X-Secret, Content-Length, host"), ("Upgrade", "websocket"), ("TE", "trailers"),
        ]))
        XCTAssertEqual(fields.hostCount, 1)
        XCTAssertEqual(fields.host, "a.example")
        XCTAssertTrue(fields.expectsContinue, "the first Expect decides")
        XCTAssertEqual(fields.framing(version: .http1_1), .length(12))
        XCTAssertTrue(fields.options.upgrade)
        XCTAssertTrue(fields.options.acceptsTrailers)
        XCTAssertTrue(fields.options.keepsAlive(.http1_0))
        XCTAssertTrue(fields.options.removes("x-secret"))
        XCTAssertFalse(fields.options.removes("content-length"), "Connection cannot remove what frames the message")
        XCTAssertFalse(fields.options.removes("Host"), "nor what routes it")

        XCTAssertFalse(RequestFields(HTTPHeaders([("Expect", "x"), ("Expect", "100-continue")])).expectsContinue)
        XCTAssertEqual(RequestFields(HTTPHeaders([("Host", "a"), ("host", "b")])).hostCount, 2)
        XCTAssertEqual(RequestFields(HTTPHeaders([("Transfer-Encoding", "CHUNKED")])).framing(version: .http1_1), .chunked)
        XCTAssertEqual(RequestFields(HTTPHeaders()).framing(version: .http1_1), RequestBodyFraming.none)
    }

    func testTheFramingReaderRefusesWhatTwoPeersCouldReadDifferently() {
        func framing(_ fields: [(String, String)], _ version: HTTPVersion = .http1_1) -> Result<RequestBodyFraming, HTTP1RequestError> {
            RequestFields(HTTPHeaders(fields)).validate(version: version)
        }
        XCTAssertEqual(framing([("Content-Length", "5")]), .success(.length(5)))
        XCTAssertEqual(framing([("Content-Length", "5"), ("Content-Length", "5")]), .failure(.malformed("more than one Content-Length")))
        XCTAssertEqual(framing([("Content-Length", "+5")]), .failure(.malformed("Content-Length is not a number")))
        XCTAssertEqual(framing([("Transfer-Encoding", "chunked"), ("Content-Length", "x")]), .failure(.malformed("Content-Length is not a number")))
        XCTAssertEqual(framing([("Transfer-Encoding", "chunked"), ("Content-Length", "5")]), .failure(.malformed("both Content-Length and Transfer-Encoding")))
        XCTAssertEqual(framing([("Transfer-Encoding", "chunked")], .http1_0), .failure(.malformed("Transfer-Encoding on HTTP/1.0")))
        XCTAssertEqual(framing([("Transfer-Encoding", "gzip, chunked")]), .failure(.unsupportedTransferCoding))
        XCTAssertEqual(framing([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")]), .failure(.unsupportedTransferCoding))
    }

    func testTheUpstreamGetsTheClientsFieldsLessHopByHopAndTheGatewaysOwn() {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/ignored", headers: [
            "Host": "a.example", "Accept": "*/*", "Connection": "keep-alive, X-Secret", "X-Secret": "s", "Keep-Alive": "timeout=5",
            "X-Forwarded-For": "10.0.0.1", "x-forwarded-for": "10.0.0.2", "X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "evil",
            "Expect": "100-continue", "Content-Length": "3", "Transfer-Encoding": "chunked", "TE": "trailers", "Upgrade": "h2c",
            "Proxy-Connection": "x", "Proxy-Authorization": "x", "Trailer": "x", "Cookie": "a=1",
        ])
        let fields = RequestFields(head.headers)
        let request = UpstreamRequest(
            client: ClientRequest(head), options: fields.options, authority: "a.example", framing: .length(3), uri: "/v1?q=1",
            peerAddress: "127.0.0.9", scheme: "https", upstream: upstream
        )
        XCTAssertEqual(written(request), """
            POST /v1?q=1 HTTP/1.1\r
            Accept: */*\r
            Cookie: a=1\r
            host: a.example\r
            content-length: 3\r
            x-forwarded-for: 10.0.0.1, 10.0.0.2, 127.0.0.9\r
            x-real-ip: 127.0.0.9\r
            x-forwarded-proto: https\r
            x-forwarded-host: a.example\r
            \r

            """)
        XCTAssertEqual(request.head.headers.map { "\($0.name): \($0.value)" }, fieldLines(written(request)), "HTTP/2 upstreams are sent the same fields")
    }

    /// What a client claims a proxy saw goes no further unless its peer is a trusted proxy;
    /// `X-Real-IP` is always the address the gateway resolved, and a path override never goes on.
    func testClaimsOnlyAProxyMakesGoOnOnlyFromATrustedOne() {
        let claims: [(String, String)] = [
            ("Host", "a"), ("Forwarded", "for=6.6.6.6;host=admin.example;proto=https"), ("X-Real-IP", "6.6.6.6"),
            ("x_real_ip", "6.6.6.6"), ("X-Original-URL", "/auth/login"), ("X_Rewrite_URL", "/auth/login"),
            ("X-Forwarded-Port", "443"), ("X-Forwarded-Prefix", "/admin"), ("x_forwarded_scheme", "https"),
            ("X-Forwarded-Ssl", "on"), ("Front-End-Https", "on"), ("X-Url-Scheme", "https"), ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-By", "proxy"), ("X-Forwarded-A", "1"), ("Client-IP", "6.6.6.6"), ("X_Client_IP", "6.6.6.6"),
            ("True-Client-IP", "6.6.6.6"), ("CF-Connecting-IP", "6.6.6.6"), ("Fastly-Client-IP", "6.6.6.6"),
            ("X-Cluster-Client-IP", "6.6.6.6"), ("X-Forwardedness", "kept"), ("Accept", "*/*"),
        ]
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders(claims))
        func lines(fromTrustedProxy: Bool) -> [String] {
            fieldLines(written(UpstreamRequest(
                client: ClientRequest(head), options: RequestFields(head.headers).options, authority: "a", framing: .none, uri: "/",
                peerAddress: "10.0.0.2", clientAddress: fromTrustedProxy ? "6.6.6.6" : "10.0.0.2", fromTrustedProxy: fromTrustedProxy,
                scheme: "http", upstream: upstream
            )))
        }
        XCTAssertEqual(lines(fromTrustedProxy: false), [
            "X-Forwardedness: kept", "Accept: */*", "host: a", "x-forwarded-for: 6.6.6.6, 10.0.0.2", "x-real-ip: 10.0.0.2",
            "x-forwarded-proto: http", "x-forwarded-host: a",
        ])
        XCTAssertEqual(lines(fromTrustedProxy: true), [
            "Forwarded: for=6.6.6.6;host=admin.example;proto=https", "X-Forwarded-Port: 443", "X-Forwarded-Prefix: /admin",
            "x_forwarded_scheme: https", "X-Forwarded-Ssl: on", "Front-End-Https: on", "X-Url-Scheme: https", "X-Forwarded-By: proxy",
            "X-Forwarded-A: 1", "Client-IP: 6.6.6.6", "X_Client_IP: 6.6.6.6", "True-Client-IP: 6.6.6.6", "CF-Connecting-IP: 6.6.6.6",
            "Fastly-Client-IP: 6.6.6.6", "X-Cluster-Client-IP: 6.6.6.6", "X-Forwardedness: kept",
            "Accept: */*", "host: a", "x-forwarded-for: 6.6.6.6, 10.0.0.2", "x-real-ip: 6.6.6.6", "x-forwarded-proto: http",
            "x-forwarded-host: a",
        ])
    }

    func testTrailersKeepOnlyFieldsThatDecideNothing() {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: ["Host": "a", "Connection": "X-Hop", "X-API-Key": "k"])
        let request = UpstreamRequest(
            client: ClientRequest(head), options: RequestFields(head.headers).options, authority: "a", framing: .chunked, uri: "/",
            peerAddress: "127.0.0.9", scheme: "http", upstream: upstream, identityFields: ["x-api-key"]
        )
        let trailers: HTTPHeaders = [
            "Content-Length": "9", "content_length": "9", "Transfer-Encoding": "chunked", "Host": "evil", "Expect": "100-continue",
            "X-Forwarded-For": "6.6.6.6", "X_Forwarded_Proto": "https", "x-forwarded-host": "evil", "TE": "trailers", "Trailer": "x",
            "X-Hop": "1", "X-API-Key": "victim", "x_api_key": "victim", "X-Checksum": "abc", "Server-Timing": "db;dur=5",
            "X-Real-IP": "6.6.6.6", "Forwarded": "for=6.6.6.6", "X-Original-URL": "/auth/login", "X-Forwarded-Port": "443",
            "X-HTTP-Method-Override": "DELETE", "x_http_method": "DELETE", "X-Method-Override": "DELETE",
        ]
        guard case .end(let kept?) = request.onward(.end(trailers)) else { return XCTFail("the kept trailers are forwarded") }
        XCTAssertEqual(kept.map { "\($0.name): \($0.value)" }, ["X-Checksum: abc", "Server-Timing: db;dur=5"])
        guard case .end(nil) = request.onward(.end(["X-Forwarded-For": "6.6.6.6"])) else { return XCTFail("nothing left, no trailers") }
        guard case .body(let body) = request.onward(.body(.byteBuffer(ByteBuffer(string: "x")))), case .byteBuffer(let bytes) = body else {
            return XCTFail("a body part goes on as it is")
        }
        XCTAssertEqual(String(buffer: bytes), "x")
    }

    func testAClientsForwardedForIsWrittenAsTheBytesItSent() {
        let received: [UInt8] = Array("10.0.0.1 caf".utf8) + [0xE9, 0xFF]
        let value = received.withUnsafeBytes { FieldText.string($0) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "a", "X-Forwarded-For": value, "X-Name": value])
        let request = UpstreamRequest(
            client: ClientRequest(head), options: RequestFields(head.headers).options, authority: "a", framing: .none, uri: "/",
            peerAddress: "127.0.0.9", scheme: "http", upstream: upstream
        )
        var buffer = ByteBuffer()
        request.write(into: &buffer)
        let bytes = Array(buffer.readableBytesView)
        XCTAssertNotNil(bytes.firstRange(of: Array("X-Name: ".utf8) + received + Array("\r\n".utf8)))
        XCTAssertNotNil(bytes.firstRange(of: Array("x-forwarded-for: ".utf8) + received + Array(", 127.0.0.9\r\n".utf8)))
    }

    func testATunnelAsksForWebSocketItselfAndAnHTTP2UpstreamIsToldOfTrailers() {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws", headers: [
            "Host": "a.example", "Connection": "Upgrade, Sec-WebSocket-Key", "Upgrade": "websocket, evil", "Sec-WebSocket-Key": "k",
        ])
        let tunnel = UpstreamRequest(
            client: ClientRequest(head), options: RequestFields(head.headers).options, authority: nil, framing: .none, uri: "/ws",
            peerAddress: "::1", scheme: "http", upstream: upstream, opensTunnel: true
        )
        XCTAssertEqual(fieldLines(written(tunnel)), [
            "host: app.internal:8080", "x-forwarded-for: ::1", "x-real-ip: ::1", "x-forwarded-proto: http", "connection: upgrade",
            "upgrade: websocket",
        ])

        var h2 = upstream
        h2.wireProtocol = .h2
        h2.basePath = "/base"
        let grpc = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/svc/M", headers: ["TE": "trailers", "Content-Type": "application/grpc"])
        let request = UpstreamRequest(
            client: ClientRequest(grpc), options: RequestFields(grpc.headers).options, authority: "g.example", framing: .chunked, uri: "/svc/M",
            peerAddress: "127.0.0.1", scheme: "https", upstream: h2
        )
        XCTAssertEqual(request.head.uri, "/base/svc/M")
        XCTAssertEqual(request.head.headers["te"], ["trailers"])
        XCTAssertEqual(request.head.headers["transfer-encoding"], ["chunked"])
    }

    func testFieldsForwardedFromTheBytesReceivedAreTheFieldsDecoded() throws {
        let obsText: [UInt8] = Array("caf".utf8) + [0xE9, 0xFF, 0x80]
        let heads: [[UInt8]] = [
            Array("GET /a HTTP/1.1\r\nHost: a.example\r\nAccept:*/*\r\nX-Pad:   padded  \r\n\r\n".utf8),
            Array("POST /b?q=1 HTTP/1.1\r\nhost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\n".utf8)
                + Array("X-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\nX_Forwarded_Proto: gopher\r\nX-API-Key: k\r\n".utf8)
                + Array("x_api_key: alias\r\nContent-Length: 3\r\nExpect: 100-continue\r\nTE: trailers\r\nCookie: a=1\r\n\r\n".utf8),
            Array("GET / HTTP/1.1\r\nHost: a\r\nX-Name: ".utf8) + obsText + Array("\r\nX-Forwarded-For: ".utf8) + obsText
                + Array("\r\nX-Empty:\r\n\r\n".utf8),
        ]
        for bytes in heads {
            var room = HTTP1HeadParser.RequestRoom()
            let received = try bytes.withUnsafeBytes { bytes throws(HTTP1RequestError) in try HTTP1HeadParser.requestHead(bytes, room: &room).request }
            XCTAssertTrue(received.headers.valuesAreReceivedBytes)
            let decoded = ClientRequest(received.head)
            XCTAssertFalse(decoded.headers.valuesAreReceivedBytes)
            func upstreamRequest(_ client: ClientRequest) -> UpstreamRequest {
                UpstreamRequest(
                    client: client, options: client.fields.options, authority: "a", framing: client.fields.framing(version: .http1_1),
                    uri: client.uri, peerAddress: "127.0.0.9", scheme: "http", upstream: upstream, identityFields: ["x-api-key"]
                )
            }
            var fromBytes = ByteBuffer()
            upstreamRequest(received).write(into: &fromBytes)
            var fromDecoded = ByteBuffer()
            upstreamRequest(decoded).write(into: &fromDecoded)
            XCTAssertEqual(Array(fromBytes.readableBytesView), Array(fromDecoded.readableBytesView))
            XCTAssertEqual(
                upstreamRequest(received).head.headers.map { "\($0.name): \($0.value)" },
                upstreamRequest(decoded).head.headers.map { "\($0.name): \($0.value)" }
            )
            XCTAssertEqual(received.headers.values(named: "X-FORWARDED-FOR"), decoded.headers.values(named: "x-forwarded-for"))
        }
        var room = HTTP1HeadParser.RequestRoom()
        let padded = try heads[0].withUnsafeBytes { bytes throws(HTTP1RequestError) in try HTTP1HeadParser.requestHead(bytes, room: &room).request }
        var out = ByteBuffer()
        UpstreamRequest(
            client: padded, options: padded.fields.options, authority: "a.example", framing: .none, uri: "/a",
            peerAddress: "127.0.0.9", scheme: "http", upstream: upstream
        ).write(into: &out)
        XCTAssertEqual(fieldLines(String(buffer: out)).prefix(2), ["Accept: */*", "X-Pad: padded"], "each field is written `name: value`")
        let withObsText = try heads[2].withUnsafeBytes { bytes throws(HTTP1RequestError) in try HTTP1HeadParser.requestHead(bytes, room: &room).request }
        XCTAssertEqual(padded.headers.values(named: "x-pad"), ["padded"], "a head kept while the next is read keeps its own bytes")
        out.clear()
        UpstreamRequest(
            client: withObsText, options: withObsText.fields.options, authority: "a", framing: .none, uri: "/",
            peerAddress: "127.0.0.9", scheme: "http", upstream: upstream
        ).write(into: &out)
        let written = Array(out.readableBytesView)
        XCTAssertNotNil(written.firstRange(of: Array("X-Name: ".utf8) + obsText + Array("\r\n".utf8)))
        XCTAssertNotNil(written.firstRange(of: Array("x-forwarded-for: ".utf8) + obsText + Array(", 127.0.0.9\r\n".utf8)))
    }

    private func written(_ request: UpstreamRequest) -> String {
        var buffer = ByteBuffer()
        request.write(into: &buffer)
        return String(buffer: buffer)
    }

    private func fieldLines(_ head: String) -> [String] {
        Array(head.components(separatedBy: "\r\n").dropFirst().filter { !$0.isEmpty })
    }
}
