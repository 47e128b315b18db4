@testable import Gateway
import HTTP2Server
import HTTPFieldText
import NIOCore
import NIOHTTP1
import RateSync
import XCTest

/// An HTTP/1.1 upstream's head goes to an HTTP/1.1 client as the bytes received, filtered and
/// completed; every other client gets `clientResponse`'s head. Both must say the same thing.
final class ClientResponseTests: XCTestCase {
    private static let upstreamFields: [[UInt8]] = [
        Array("Server: nginx\r\n".utf8),
        Array("Content-Length: 2\r\n".utf8),
        Array("Transfer-Encoding: chunked\r\n".utf8),
        Array("Connection: Keep-Alive, X-Secret\r\n".utf8),
        Array("Connection: close\r\n".utf8),
        Array("X-SECRET: hop\r\n".utf8),
        Array("Keep-Alive: timeout=5\r\n".utf8),
        Array("X-RateLimit-Limit: 999\r\n".utf8),
        Array("ratelimit: \"upstream\";r=1;t=1\r\n".utf8),
        Array("X-Ratelimit-Other: kept unless ours\r\n".utf8),
        Array("X-Obs: a".utf8) + [0xE9, 0xFF, 0x80] + Array("b  \r\n".utf8),
        Array("X-Empty:\r\n".utf8),
        Array("x-spaced: \t value with  inner  spaces \t\r\n".utf8),
    ]

    private static let rateLimitHeaders = RateLimitHeaders(
        Decision(allowed: true, limit: 10, remaining: 9, retryAfter: 0, resetAfter: 0.4, now: 1_700_000_000),
        limiter: LimiterConfig(id: "bench", storeID: "local", algorithm: .slidingWindow(SlidingWindowRule(limit: 10, windowSeconds: 1)))
    )

    /// Every status with six of the fields at a time (the rest always present), so that every
    /// combination of framing, Connection and rate-limit fields comes up.
    private func upstreamHeads(withObsText: Bool = true) throws -> [ReceivedResponseHead] {
        var heads: [ReceivedResponseHead] = []
        for status in ["200 OK", "204 No Content", "304 Not Modified", "404 Not Found"] {
            for mask in 0..<(1 << 6) {
                var head = Array("HTTP/1.1 \(status)\r\n".utf8)
                for (index, field) in Self.upstreamFields.enumerated() where index >= 6 || mask & (1 << index) != 0 {
                    if !withObsText && field.contains(where: { $0 >= 0x80 }) { continue }
                    head += field
                }
                head += Array("\r\n".utf8)
                heads.append(try Self.received(head))
            }
        }
        return heads
    }

    func testBytesForwardedAsReceivedSayWhatTheGeneralHeadSays() throws {
        var compared = 0
        for received in try upstreamHeads() {
            for (version, method) in [(HTTPVersion.http1_1, HTTPMethod.GET), (.http1_1, .HEAD), (.http1_0, .GET)] {
                for keepAlive in [true, false] {
                    for rateLimitHeaders in [nil, Self.rateLimitHeaders] {
                        try compare(received, version: version, method: method, keepAlive: keepAlive, rateLimitHeaders: rateLimitHeaders)
                        compared += 1
                    }
                }
            }
        }
        XCTAssertEqual(compared, 4 * 64 * 12)
    }

    func testTheHeaderBlockEncodedFromTheBytesReceivedIsTheGeneralHeadsBlock() throws {
        // (Obs-text aside: the general head's Strings hold FieldText's escapes, which only an
        // HTTP/1.1 writer turns back; the block encoded from the bytes has the bytes themselves.)
        for received in try upstreamHeads(withObsText: false) {
            for rateLimitHeaders in [nil, Self.rateLimitHeaders] {
                let general = received.head
                var expected = ByteBuffer()
                HTTP2ResponseFields.encode(
                    ForwardedHeaders.clientResponse(
                        from: general, options: ConnectionOptions(general.headers), requestVersion: HTTPVersion(major: 2, minor: 0),
                        requestMethod: .GET, keepAlive: true, rateLimitHeaders: rateLimitHeaders
                    ),
                    into: &expected
                )
                var block = ByteBuffer()
                ForwardedHeaders.encodeClientResponse(from: received, options: received.options, rateLimitHeaders: rateLimitHeaders, into: &block)
                XCTAssertEqual(Array(block.readableBytesView), Array(expected.readableBytesView))
            }
        }
    }

    private func compare(
        _ received: ReceivedResponseHead,
        version: HTTPVersion,
        method: HTTPMethod,
        keepAlive: Bool,
        rateLimitHeaders: RateLimitHeaders?
    ) throws {
        let general = received.head
        let generalOptions = ConnectionOptions(general.headers)
        let options = received.options
        XCTAssertEqual(options.keepsAlive(.http1_1), generalOptions.keepsAlive(.http1_1))
        XCTAssertEqual(options.keepsAlive(.http1_0), generalOptions.keepsAlive(.http1_0))
        XCTAssertEqual(
            ForwardedHeaders.needsCloseDelimiting(received, requestVersion: version, method: method),
            ForwardedHeaders.needsCloseDelimiting(general, requestVersion: version, method: method)
        )
        var expected = ByteBuffer()
        let framing = HTTP1Writer.writeResponseHead(
            ForwardedHeaders.clientResponse(
                from: general, options: generalOptions, requestVersion: version, requestMethod: method,
                keepAlive: keepAlive, rateLimitHeaders: rateLimitHeaders
            ),
            into: &expected
        )
        var written = ByteBuffer()
        let chunked = ForwardedHeaders.writeClientResponse(
            from: received, options: options, requestVersion: version, requestMethod: method,
            keepAlive: keepAlive, rateLimitHeaders: rateLimitHeaders, into: &written
        )
        XCTAssertEqual(Array(written.readableBytesView), Array(expected.readableBytesView), String(decoding: expected.readableBytesView, as: UTF8.self))
        XCTAssertEqual(chunked, framing == .chunked)
    }

    /// A response head as the upstream parser reads it, its fields in an array of its own.
    private static func received(_ head: [UInt8]) throws -> ReceivedResponseHead {
        var room: [ReceivedResponseHead.Field] = []
        return try HTTP1HeadParser.responseHead(ByteBuffer(bytes: head), fieldsIn: &room)
    }

    func testObsTextGoesOnByteForByte() throws {
        let value: [UInt8] = [0x61, 0xE9, 0xFF, 0x80, 0xF4, 0x8F, 0xBE, 0x80, 0x62]
        let head = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Obs: ".utf8) + value + Array("\r\n\r\n".utf8)
        let received = try Self.received(head)
        var written = ByteBuffer()
        _ = ForwardedHeaders.writeClientResponse(
            from: received, options: received.options, requestVersion: .http1_1, requestMethod: .GET,
            keepAlive: true, rateLimitHeaders: nil, into: &written
        )
        let line = Array("X-Obs: ".utf8) + value + Array("\r\n".utf8)
        XCTAssertNotNil(Array(written.readableBytesView).firstRange(of: line), String(decoding: written.readableBytesView, as: UTF8.self))
    }
}
