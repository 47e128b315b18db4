import Foundation
@testable import HTTP2Server
import NIOCore
import NIOHPACK
import NIOHTTP1
import XCTest

/// The HTTP/2 ⇄ HTTP/1 translation of request heads and response fields.
final class HTTP2RequestTests: XCTestCase {
    private func block(_ fields: [(String, String)]) -> HPACKHeaders {
        HPACKHeaders(fields)
    }

    func testAuthorityBecomesHostUnlessTheClientSentOne() throws {
        let head = try HTTP2Request.head(
            block([(":method", "GET"), (":scheme", "https"), (":path", "/a?b=1"), (":authority", "example.com"), ("accept", "*/*")]),
            endStream: true
        )
        XCTAssertEqual(head.method, .GET)
        XCTAssertEqual(head.uri, "/a?b=1")
        XCTAssertEqual(head.version, HTTPVersion(major: 2, minor: 0))
        XCTAssertEqual(head.headers["host"], ["example.com"])
        XCTAssertEqual(head.headers["accept"], ["*/*"])
        XCTAssertFalse(head.headers.contains(name: ":path"), "no pseudo-header reaches HTTP/1")

        let withHost = try HTTP2Request.head(
            block([(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "a.example"), ("host", "A.Example")]),
            endStream: true
        )
        XCTAssertEqual(withHost.headers["host"], ["A.Example"], "the same host, in another case")
        let onlyHost = try HTTP2Request.head(block([(":method", "GET"), (":scheme", "https"), (":path", "/"), ("host", "b.example")]), endStream: true)
        XCTAssertEqual(onlyHost.headers["host"], ["b.example"])
    }

    /// RFC 9113, 8.2.3: cookie crumbs are one `cookie` field again, joined by "; ", where the
    /// first stood; the other fields keep their order.
    func testCookieFieldsAreJoinedIntoOne() throws {
        let head = try HTTP2Request.head(
            block([
                (":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "x"),
                ("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2"), ("cookie", "c=3"),
            ]),
            endStream: true
        )
        XCTAssertEqual(head.headers["cookie"], ["a=1; b=2; c=3"])
        XCTAssertEqual(head.headers.map(\.name), ["host", "cookie", "accept"])
        let single = try HTTP2Request.head(
            block([(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "x"), ("cookie", "a=1")]),
            endStream: true
        )
        XCTAssertEqual(single.headers["cookie"], ["a=1"])
    }

    /// An HTTP/1.1 upstream drops the spaces and tabs around a value: so does the gateway, before
    /// anything (an identity, `host` against `:authority`, `te`) reads it.
    func testSpacesAndTabsAroundAValueAreDropped() throws {
        let head = try HTTP2Request.head(
            block([
                (":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "x"), ("host", " x\t"),
                ("x-api-key", "k "), ("x-other", "\t \tk"), ("x-inner", " a  b "), ("x-blank", " \t "), ("x-obs", " caf\u{e9} "),
                ("te", "trailers "), ("x-plain", "k"),
            ]),
            endStream: true
        )
        XCTAssertEqual(head.headers["host"], ["x"])
        XCTAssertEqual(head.headers["x-api-key"], ["k"])
        XCTAssertEqual(head.headers["x-other"], ["k"])
        XCTAssertEqual(head.headers["x-inner"], ["a  b"])
        XCTAssertEqual(head.headers["x-blank"], [""])
        XCTAssertEqual(head.headers["x-obs"], ["caf\u{e9}"])
        XCTAssertEqual(head.headers["te"], ["trailers"])
        XCTAssertEqual(head.headers["x-plain"], ["k"])
        let trailers = try HTTP2Request.trailers(block([("x-checksum", " abc\t")]))
        XCTAssertEqual(trailers["x-checksum"], ["abc"])
    }

    func testAnExtendedConnectForWebSocketBecomesTheHandshakeItStandsFor() throws {
        let (head, opensTunnel) = try HTTP2Request.request(
            block([
                (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/chat?room=1"),
                (":authority", "example.com"), ("sec-websocket-version", "13"), ("sec-websocket-key", "Y2xpZW50cyBvd24ga2V5IQ=="),
            ]),
            endStream: false
        )
        XCTAssertTrue(opensTunnel)
        XCTAssertEqual(head.method, .GET)
        XCTAssertEqual(head.uri, "/chat?room=1")
        XCTAssertEqual(head.headers["upgrade"], ["websocket"])
        XCTAssertEqual(head.headers["connection"], ["upgrade"])
        XCTAssertEqual(head.headers["host"], ["example.com"])
        XCTAssertEqual(head.headers["sec-websocket-version"], ["13"])
        XCTAssertEqual(head.headers["sec-websocket-key"].count, 1, "the client's own is not passed on beside it")
        XCTAssertEqual(Data(base64Encoded: head.headers["sec-websocket-key"].first ?? "")?.count, 16, "a key of the gateway's own")
        XCTAssertNotEqual(head.headers["sec-websocket-key"].first, "Y2xpZW50cyBvd24ga2V5IQ==")
        XCTAssertFalse(head.headers.contains(name: "transfer-encoding"), "the stream's DATA is the tunnel's, not a body")
        XCTAssertFalse(head.headers.contains(name: "content-length"))

        let plain = try HTTP2Request.request(block([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "x")]), endStream: true)
        XCTAssertFalse(plain.opensTunnel)
        XCTAssertFalse(plain.head.headers.contains(name: "upgrade"))

        // A plain CONNECT (RFC 9113, 8.5) is well formed: it reaches the proxy, which refuses it,
        // as a CONNECT of its authority, never as a tunnel nor a path a route could match.
        let connect = try HTTP2Request.request(block([(":method", "CONNECT"), (":authority", "x:443")]), endStream: false)
        XCTAssertFalse(connect.opensTunnel)
        XCTAssertEqual(connect.head.method, .CONNECT)
        XCTAssertEqual(connect.head.uri, "x:443")
        XCTAssertEqual(connect.head.headers["host"], ["x:443"])
        XCTAssertFalse(connect.head.headers.contains(name: "transfer-encoding"), "its DATA is a tunnel's, never forwarded as a body")

        let refused: [[(String, String)]] = [
            [(":method", "GET"), (":protocol", "websocket"), (":scheme", "http"), (":path", "/"), (":authority", "x")],
            [(":method", "CONNECT"), (":protocol", "h2c"), (":scheme", "http"), (":path", "/"), (":authority", "x")],
            [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", "/")],
            [(":method", "CONNECT"), (":protocol", "websocket"), (":protocol", "websocket"), (":scheme", "http"), (":path", "/"), (":authority", "x")],
            [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", "/"), (":authority", "x"), ("content-length", "5")],
            // A client cannot ask for the upgrade fields itself: they are connection-specific.
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "x"), ("upgrade", "websocket")],
        ]
        for fields in refused {
            XCTAssertThrowsError(try HTTP2Request.request(block(fields), endStream: false), "\(fields)")
        }
    }

    func testABodyWithoutALengthIsChunkedWhateverTheMethod() throws {
        // Unframed, a GET's body would reach the upstream as the start of another request.
        for method in ["GET", "POST", "OPTIONS"] {
            let head = try HTTP2Request.head(
                block([(":method", method), (":scheme", "http"), (":path", "/"), (":authority", "x")]),
                endStream: false
            )
            XCTAssertEqual(head.headers["transfer-encoding"], ["chunked"], method)
        }
        let sized = try HTTP2Request.head(
            block([(":method", "POST"), (":scheme", "http"), (":path", "/"), (":authority", "x"), ("content-length", "5")]),
            endStream: false
        )
        XCTAssertFalse(sized.headers.contains(name: "transfer-encoding"))
        let emptyPost = try HTTP2Request.head(
            block([(":method", "POST"), (":scheme", "http"), (":path", "/"), (":authority", "x")]),
            endStream: true
        )
        XCTAssertEqual(emptyPost.headers["content-length"], ["0"])
        let emptyGet = try HTTP2Request.head(
            block([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "x")]),
            endStream: true
        )
        XCTAssertFalse(emptyGet.headers.contains(name: "content-length"))
        XCTAssertFalse(emptyGet.headers.contains(name: "transfer-encoding"))
    }

    func testMissingPseudoHeadersAreErrors() {
        XCTAssertThrowsError(try HTTP2Request.head(block([(":method", "GET"), (":scheme", "http")]), endStream: true)) {
            XCTAssertEqual(($0 as? HTTP2Request.Malformed)?.reason, "no :path")
        }
        XCTAssertThrowsError(try HTTP2Request.head(block([(":path", "/")]), endStream: true))
    }

    /// Each block HTTP/2 calls malformed (RFC 9113, 8.2 and 8.3), several of which would smuggle
    /// bytes into the HTTP/1.1 request line or headers sent upstream.
    func testMalformedRequestBlocksAreRefused() {
        let valid: [(String, String)] = [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "x")]
        XCTAssertNoThrow(try HTTP2Request.head(block(valid + [("te", "trailers"), ("x-a", "b c\t\u{e9}")]), endStream: true))
        let malformed: [String: [(String, String)]] = [
            "space in :path": [(":method", "GET"), (":scheme", "https"), (":path", "/a HTTP/1.1"), (":authority", "x")],
            "CRLF in :path": [(":method", "GET"), (":scheme", "https"), (":path", "/\r\nx: y"), (":authority", "x")],
            "space in :method": [(":method", "GET /x"), (":scheme", "https"), (":path", "/"), (":authority", "x")],
            "non-token method": [(":method", "G(T"), (":scheme", "https"), (":path", "/"), (":authority", "x")],
            "space in :authority": [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "a b")],
            "empty :path": [(":method", "GET"), (":scheme", "https"), (":path", ""), (":authority", "x")],
            "no :scheme": [(":method", "GET"), (":path", "/"), (":authority", "x")],
            "CONNECT with :scheme and :path but no :protocol": [(":method", "CONNECT"), (":scheme", "https"), (":path", "/"), (":authority", "x:443")],
            "CONNECT without :authority": [(":method", "CONNECT")],
            "duplicate :path": valid + [(":path", "/b")],
            "pseudo after regular": [(":method", "GET"), (":scheme", "https"), ("a", "b"), (":path", "/")],
            "response pseudo-header": valid + [(":status", "200")],
            "upper-case name": valid + [("X-A", "b")],
            "empty name": valid + [("", "b")],
            "separator in name": valid + [("a:b", "c")],
            "CR in value": valid + [("x-a", "b\rc")],
            "LF in value": valid + [("x-a", "b\nx-injected: 1")],
            "NUL in value": valid + [("x-a", "b\u{0}")],
            "connection": valid + [("connection", "close")],
            "transfer-encoding": valid + [("transfer-encoding", "chunked")],
            "keep-alive": valid + [("keep-alive", "5")],
            "upgrade": valid + [("upgrade", "websocket")],
            "proxy-connection": valid + [("proxy-connection", "close")],
            "te other than trailers": valid + [("te", "gzip")],
            "Host naming another host than :authority": valid + [("host", "admin.example")],
            "absolute URI in :path": [(":method", "GET"), (":scheme", "https"), (":path", "http://admin.example/"), (":authority", "x")],
            "relative :path": [(":method", "GET"), (":scheme", "https"), (":path", "auth/login"), (":authority", "x")],
            "two content-lengths that agree": valid + [("content-length", "5"), ("content-length", "5")],
            "two content-lengths that differ": valid + [("content-length", "5"), ("content-length", "6")],
        ]
        for (what, fields) in malformed {
            XCTAssertThrowsError(try HTTP2Request.head(block(fields), endStream: true), what) {
                XCTAssertTrue($0 is HTTP2Request.Malformed, what)
            }
        }
        XCTAssertEqual(try HTTP2Request.trailers(block([("x-checksum", "abc")]))["x-checksum"], ["abc"])
        XCTAssertThrowsError(try HTTP2Request.trailers(block([(":path", "/")])))
        XCTAssertThrowsError(try HTTP2Request.trailers(block([("x-a", "b\r\nc: d")])))
    }

    /// Every byte, alone and amid valid ones, in a field name, a method and a field value: a
    /// name takes only lower-case tchar (RFC 9110, 5.6.2), a method any tchar, a value anything
    /// but NUL, LF and CR; a pseudo-header value only visible ASCII.
    func testEachByteIsAllowedInANameAMethodAndAValueExactlyWhereTheGrammarAllowsIt() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        let valid: [(String, String)] = [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "x")]
        func accepted(_ fields: [(String, String)]) -> Bool { (try? HTTP2Request.head(block(fields), endStream: true)) != nil }
        for byte in UInt8(0)...UInt8(255) {
            // HPACK carries octets; NIOHPACK hands them over as Strings (bytes above 0x7F as UTF-8 here).
            let text = String(decoding: [byte], as: UTF8.self)
            let nameAllowed = tchar.contains(byte) && !(UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            for name in ["\(text)", "x-\(text)", "\(text)-long-field-name"] {
                XCTAssertEqual(accepted(valid + [(name, "v")]), nameAllowed, "name byte \(byte) in \(name.debugDescription)")
            }
            let methodAllowed = tchar.contains(byte)
            XCTAssertEqual(accepted([(":method", "P\(text)ST"), (":scheme", "https"), (":path", "/"), (":authority", "x")]), methodAllowed, "method byte \(byte)")
            let valueAllowed = byte != 0x00 && byte != 0x0A && byte != 0x0D
            for value in [text, "a\(text)", "a long value with \(text) in its middle"] {
                XCTAssertEqual(accepted(valid + [("x-a", value)]), valueAllowed, "value byte \(byte) in \(value.debugDescription)")
            }
            let pseudoAllowed = byte > 0x20 && byte < 0x7F
            XCTAssertEqual(accepted([(":method", "GET"), (":scheme", "https"), (":path", "/a\(text)b"), (":authority", "x")]), pseudoAllowed, ":path byte \(byte)")
        }
    }

    func testADeclaredLengthIsOneFieldOfDigits() throws {
        func head(_ lengths: [String]) -> HTTPRequestHead {
            HTTPRequestHead(version: .http2, method: .POST, uri: "/", headers: HTTPHeaders(lengths.map { ("content-length", $0) }))
        }
        XCTAssertNil(try HTTP2Request.declaredLength(head([])))
        XCTAssertEqual(try HTTP2Request.declaredLength(head(["42"])), 42)
        for bad in [["-1"], ["+1"], [""], ["1 2"], ["0x10"], ["99999999999999999999"], ["1", "2"], ["7", "7"]] {
            XCTAssertThrowsError(try HTTP2Request.declaredLength(head(bad)), "\(bad)")
        }
    }

    /// Our encoding, read back by swift-nio-http2's HPACK decoder (an independent implementation).
    private func decode(_ head: HTTPResponseHead) throws -> [(String, String)] {
        var buffer = ByteBuffer()
        HTTP2ResponseFields.encode(head, into: &buffer)
        var decoder = HPACKDecoder(allocator: ByteBufferAllocator(), maxDynamicTableSize: 4096, maxHeaderListSize: 1 << 20)
        let block = try decoder.decodeHeaders(from: &buffer)
        XCTAssertEqual(buffer.readableBytes, 0)
        return block.map { ($0.name, $0.value) }
    }

    func testResponseFieldsAreLowerCasedAndConnectionFieldsDropped() throws {
        let headers = HTTPHeaders([
            ("Content-Type", "text/plain"),
            ("content-length", "3"),
            ("Connection", "close"),
            ("Keep-Alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("UPGRADE", "h2c"),
            ("X-RateLimit-Limit", "10"),
            ("x-ratelimit-remaining", "9"),
            ("RateLimit-Policy", "\"auth\";q=10;w=60"),
            ("date", "Fri, 27 Nov 2026 08:27:42 GMT"),
            ("x-long", String(repeating: "v", count: 300)),
            ("x-utf8", "caf\u{e9}"),
        ])
        let fields = try decode(HTTPResponseHead(version: .http2, status: .ok, headers: headers))
        XCTAssertEqual(fields.map(\.0), [
            ":status", "content-type", "content-length", "x-ratelimit-limit", "x-ratelimit-remaining",
            "ratelimit-policy", "date", "x-long", "x-utf8",
        ])
        XCTAssertEqual(fields.map(\.1), [
            "200", "text/plain", "3", "10", "9", "\"auth\";q=10;w=60", "Fri, 27 Nov 2026 08:27:42 GMT",
            String(repeating: "v", count: 300), "caf\u{e9}",
        ])
    }

    /// Lower-casing eight bytes at once changes A to Z and nothing else, whatever the bytes
    /// around (bytes from 0x80 up, and the neighbours of A and Z, included); a name is matched
    /// against a literal in any case and at any length.
    func testWordLowerCasingChangesOnlyUpperCaseLettersAndMatchingIgnoresOnlyCase() {
        for byte in UInt8(0)...UInt8(255) {
            for position in 0..<8 {
                for filler: UInt8 in [0x00, 0x40, 0x41, 0x5A, 0x5B, 0x7F, 0x80, 0xC1, 0xDA, 0xFF] {
                    var bytes = [UInt8](repeating: filler, count: 8)
                    bytes[position] = byte
                    let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                    let expected = bytes.map(HTTP2FieldSyntax.lowerCased).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                    XCTAssertEqual(HTTP2FieldSyntax.lowerCased(word: word), expected, "byte \(byte) at \(position) amid \(filler)")
                }
            }
        }
        func matches(_ text: String, _ literal: StaticString) -> Bool { Array(text.utf8).withUnsafeBytes { HTTP2FieldSyntax.matches($0, literal) } }
        XCTAssertTrue(matches("Proxy-CONNECTION", "proxy-connection"))
        XCTAssertTrue(matches("Transfer-Encoding", "transfer-encoding"))
        XCTAssertTrue(matches("DATE", "date"))
        XCTAssertFalse(matches("Proxy-Connectiom", "proxy-connection"), "a difference in the last word's tail")
        XCTAssertFalse(matches("Proxy_Connection", "proxy-connection"), "a difference in the first word")
        XCTAssertFalse(matches("transfer-encodin", "transfer-encoding"))
        XCTAssertFalse(matches("transfer-encoding\u{0}", "transfer-encoding"))
        XCTAssertFalse([0x44, 0x41, 0x54, 0xC5].withUnsafeBytes { HTTP2FieldSyntax.matches($0, "date") }, "0xC5 is not E's other case")
        XCTAssertFalse([0x75, 0x70, 0x67, 0x72, 0x61, 0x64, 0x65, 0x00, 0x00, 0x00].withUnsafeBytes { HTTP2FieldSyntax.matches($0, "keep-alive") })
    }

    func testEveryStatusIsEncoded() throws {
        for code in [100, 200, 201, 204, 206, 301, 304, 400, 404, 429, 500, 502, 503, 599] {
            let fields = try decode(HTTPResponseHead(version: .http2, status: .init(statusCode: code)))
            XCTAssertEqual(fields.first?.0, ":status")
            XCTAssertEqual(fields.first?.1, String(code))
        }
    }

    func testHPACKIntegersCrossTheirPrefix() throws {
        // A name of exactly the 7-bit prefix's limit (127) and longer, and a value of 16,384.
        for (nameLength, valueLength) in [(126, 0), (127, 127), (128, 16_384)] {
            let name = String(repeating: "n", count: nameLength)
            let value = String(repeating: "v", count: valueLength)
            let fields = try decode(HTTPResponseHead(version: .http2, status: .ok, headers: [name: value]))
            XCTAssertEqual(fields.last?.0, name)
            XCTAssertEqual(fields.last?.1, value)
        }
    }
}
