@testable import Gateway
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
            block([(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "a.example"), ("host", "b.example")]),
            endStream: true
        )
        XCTAssertEqual(withHost.headers["host"], ["b.example"])
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
            XCTAssertEqual(($0 as? HTTP2Request.Malformed)?.missing, ":path")
        }
        XCTAssertThrowsError(try HTTP2Request.head(block([(":path", "/")]), endStream: true))
    }

    func testResponseFieldsAreLowerCasedConnectionFieldsDroppedAndOnlyRepeatingOnesIndexed() {
        let headers = HTTPHeaders([
            ("Content-Type", "text/plain"),
            ("Content-Length", "3"),
            ("Connection", "close"),
            ("Keep-Alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "9"),
            ("RateLimit-Policy", "\"auth\";q=10;w=60"),
            ("RateLimit", "\"auth\";r=9;t=60"),
            ("Retry-After", "1"),
            ("X-Upstream-Id", "abc"),
        ])
        var block = HPACKHeaders()
        HTTP2ResponseFields.append(headers, to: &block)
        let fields = block.map { ($0.name, $0.value, $0.indexable) }
        XCTAssertEqual(fields.map(\.0), [
            "content-type", "content-length", "x-ratelimit-limit", "x-ratelimit-remaining",
            "ratelimit-policy", "ratelimit", "retry-after", "x-upstream-id",
        ])
        XCTAssertEqual(fields.filter { $0.2 == .indexable }.map(\.0), ["content-type", "x-ratelimit-limit", "ratelimit-policy"])
        XCTAssertEqual(block.first(name: "x-upstream-id"), "abc")
    }
}
