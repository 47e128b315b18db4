@testable import Gateway
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

/// What the admin listener's decoder makes of the bytes it reads.
final class AdminRequestDecoderTests: XCTestCase {
    private var channel: EmbeddedChannel!
    private var decoder: AdminRequestDecoder!
    private var errors: ErrorRecorder!

    override func setUpWithError() throws {
        decoder = AdminRequestDecoder(maxHeadBytes: 1024)
        errors = ErrorRecorder()
        channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(decoder)
        try channel.pipeline.syncOperations.addHandler(errors)
    }

    override func tearDown() {
        _ = try? channel.finish()
    }

    private func send(_ text: String) throws {
        try channel.writeInbound(channel.allocator.buffer(string: text))
    }

    private func parts() throws -> [HTTPServerRequestPart] {
        var parts: [HTTPServerRequestPart] = []
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
        return parts
    }

    func testPipelinedRequestsComeOutOneAtATimeOnceTheLastIsAnswered() throws {
        try send("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\nPOST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
        let first = try parts()
        XCTAssertEqual(first.count, 2, "the second waits for the first's answer: \(first)")
        guard case .head(let head) = first.first else { return XCTFail("\(first)") }
        XCTAssertEqual(head.uri, "/metrics")
        XCTAssertTrue(head.isKeepAlive)
        try answer()
        let second = try parts()
        XCTAssertEqual(second.count, 3, "\(second)")
        guard case .head(let post) = second.first else { return XCTFail("\(second)") }
        XCTAssertEqual(post.method, .POST)
        XCTAssertEqual(second[1], .body(channel.allocator.buffer(string: "hi")))
        XCTAssertEqual(second[2], .end(nil))
        XCTAssertNil(decoder.failure)
    }

    func testNothingMoreIsParsedWhileTheSocketTakesNoMore() throws {
        try send("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try parts().count, 2)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        try answer()
        XCTAssertEqual(try parts().count, 0, "the socket takes no more")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(try parts().count, 2)
    }

    /// The end of an answer, as AdminHandler writes it.
    private func answer() throws {
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        _ = try channel.readOutbound(as: HTTPServerResponsePart.self)
    }

    func testAHeadPastItsBoundIsAFailureAndLaterBytesAreDropped() throws {
        try send("GET /metrics HTTP/1.1\r\nHost: a\r\nX:" + String(repeating: " ", count: 2048))
        XCTAssertEqual(decoder.failure, .headTooLarge)
        XCTAssertEqual(errors.count, 1)
        try send("\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try parts().count, 0)
        XCTAssertEqual(errors.count, 1, "told once")
    }

    func testUnreadableRequestsKeepWhyForTheirAnswer() throws {
        XCTAssertEqual(try failure(after: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), .unsupportedTransferCoding)
        XCTAssertEqual(try failure(after: "GET / HTTP/2.0\r\nHost: a\r\n\r\n"), .unsupportedVersion)
        let malformed = try failure(after: "GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n")
        guard case .malformed = malformed else { return XCTFail("\(String(describing: malformed))") }
    }

    /// What a decoder of its own made of `request`.
    private func failure(after request: String) throws -> HTTP1RequestError? {
        let decoder = AdminRequestDecoder(maxHeadBytes: 1024)
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try channel.pipeline.syncOperations.addHandler(decoder)
        try channel.pipeline.syncOperations.addHandler(ErrorRecorder())
        try channel.writeInbound(channel.allocator.buffer(string: request))
        return decoder.failure
    }

    func testAWebSocketHandshakeClosesItsConnectionAndWhatFollowsIsNotARequest() throws {
        try send(
            "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                + "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        let parts = try parts()
        XCTAssertEqual(parts.count, 2, "\(parts)")
        guard case .head(let head) = parts.first else { return XCTFail("\(parts)") }
        XCTAssertFalse(head.isKeepAlive)
        XCTAssertNil(decoder.failure)
    }
}

/// Counts the errors that reach the end of the pipeline.
private final class ErrorRecorder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    private(set) var count = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        count += 1
    }
}
