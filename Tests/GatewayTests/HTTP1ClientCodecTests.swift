@testable import Gateway
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

/// The upstream connection's codec reads an answer only to a request the upstream can have
/// seen: one that was flushed, not merely written.
final class HTTP1ClientCodecTests: XCTestCase {
    private final class ErrorRecorder: ChannelInboundHandler {
        typealias InboundIn = Never
        var errors: [any Error] = []

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            errors.append(error)
        }
    }

    private var channel: EmbeddedChannel!
    private var codec: HTTP1ClientCodec!
    private var recorder: ErrorRecorder!

    override func setUpWithError() throws {
        channel = EmbeddedChannel()
        codec = HTTP1ClientCodec(maxHeadBytes: 8192)
        recorder = ErrorRecorder()
        try channel.pipeline.syncOperations.addHandlers([codec, recorder])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
    }

    override func tearDown() {
        _ = try? channel.finish()
    }

    private let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    private func receive(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    private func writeRequest() {
        codec.write(.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")), promise: nil)
        codec.write(.end(nil), promise: nil)
    }

    func testAnAnswerToAFlushedRequestIsRead() throws {
        writeRequest()
        channel.flush()
        try receive(answer)
        XCTAssertTrue(recorder.errors.isEmpty, "\(recorder.errors)")
        XCTAssertTrue(channel.isActive)
    }

    func testBytesReadBeforeTheRequestIsFlushedAreOutOfTurn() throws {
        // Written in this tick, flushed at its end: what is read in between was sent before
        // the upstream could see the request (a second answer to the exchange before).
        writeRequest()
        try receive(answer)
        XCTAssertEqual(recorder.errors.first as? HTTP1RequestError, .malformed("bytes before any request was sent"))
        XCTAssertFalse(channel.isActive, "the connection is closed, never leased again")
    }

    /// A body is written exactly as long as its head says: a byte more, or an end before the
    /// last byte, closes the connection instead (the upstream would read the excess as a request
    /// of its own, or the next request on the connection as the rest of this body).
    func testABodyIsWrittenExactlyAsLongAsItsHeadSays() throws {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: ["content-length": "4"])
        codec.write(.head(head), promise: nil)
        codec.write(.body(.byteBuffer(ByteBuffer(string: "abcd"))), promise: nil)
        codec.write(.end(nil), promise: nil)
        channel.flush()
        XCTAssertTrue(channel.isActive, "a body of its length goes")
        try receive(answer)

        codec.write(.head(head), promise: nil)
        let tooLong = channel.eventLoop.makePromise(of: Void.self)
        codec.write(.body(.byteBuffer(ByteBuffer(string: "abcde"))), promise: tooLong)
        XCTAssertThrowsError(try tooLong.futureResult.wait()) { XCTAssertTrue($0 is HTTP1ClientCodec.UnframedBody) }
        XCTAssertFalse(channel.isActive, "a byte past the length closes the connection")

        _ = try? channel.finish()
        try setUpWithError()
        codec.write(.head(head), promise: nil)
        codec.write(.body(.byteBuffer(ByteBuffer(string: "abc"))), promise: nil)
        let short = channel.eventLoop.makePromise(of: Void.self)
        codec.write(.end(nil), promise: short)
        XCTAssertThrowsError(try short.futureResult.wait()) { XCTAssertTrue($0 is HTTP1ClientCodec.UnframedBody) }
        XCTAssertFalse(channel.isActive, "an end short of the length closes the connection")
    }

    func testOnlyTheFlushedRequestsAnswerIsExpected() throws {
        writeRequest()
        channel.flush()
        try receive(answer)
        writeRequest()
        try receive("HTTP/1.1 200 OK\r\n")
        XCTAssertEqual(recorder.errors.first as? HTTP1RequestError, .malformed("bytes before any request was sent"))
    }
}
