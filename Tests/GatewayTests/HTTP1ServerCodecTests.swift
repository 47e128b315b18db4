@testable import Gateway
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

/// What the client connection's codec hands the socket for a response it forwards.
final class HTTP1ServerCodecTests: XCTestCase {
    private var channel: EmbeddedChannel!
    private var codec: HTTP1ServerCodec!

    override func setUpWithError() throws {
        codec = HTTP1ServerCodec(maxHeadBytes: 8192)
        channel = EmbeddedChannel(handler: codec)
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
    }

    private func writeHead(_ text: String, chunked: Bool = false) {
        codec.writeResponseHead { buffer in
            buffer.writeString(text)
            return chunked
        }
    }

    /// Every buffer the socket was given, as text.
    private func written() throws -> [String] {
        var writes: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            writes.append(String(buffer: buffer))
        }
        return writes
    }

    func testTheCodecKnowsTheWritabilityItsChannelLastAnnounced() throws {
        // The proxy asks it after every read, instead of asking the channel.
        XCTAssertTrue(codec.isWritable)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertFalse(codec.isWritable)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertTrue(codec.isWritable)
    }

    func testACodecAddedToAChannelThatCannotTakeMoreStartsUnwritable() throws {
        let full = EmbeddedChannel()
        full.isWritable = false
        let late = HTTP1ServerCodec(maxHeadBytes: 8192)
        try full.pipeline.syncOperations.addHandler(late)
        XCTAssertFalse(late.isWritable)
        _ = try? full.finish()
    }

    func testASmallResponseIsOneWriteOnceFlushed() throws {
        writeHead("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        codec.write(.body(.byteBuffer(ByteBuffer(string: "ok"))), promise: nil)
        codec.write(.end(nil), promise: nil)
        XCTAssertEqual(try written(), [], "nothing leaves before the flush")
        channel.flush()
        XCTAssertEqual(try written(), ["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"])
    }

    func testAClosePutsOutWhatWasWrittenAndNotYetFlushed() throws {
        // The proxy flushes at the end of its loop's tick; a close in between must not drop the
        // answer written before it.
        writeHead("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        codec.write(.body(.byteBuffer(ByteBuffer(string: "ok"))), promise: nil)
        codec.write(.end(nil), promise: nil)
        channel.close(promise: nil)
        XCTAssertEqual(try written(), ["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"])
    }

    func testTheFlushAskedForAtTheEndOfTheTickPutsOutTheHeldHead() throws {
        writeHead("HTTP/1.1 204 No Content\r\n\r\n")
        codec.write(.end(nil), promise: nil)
        XCTAssertEqual(try written(), [])
        codec.flushNow()
        XCTAssertEqual(try written(), ["HTTP/1.1 204 No Content\r\n\r\n"])
    }

    func testAChunkedBodyAndItsEndJoinTheHeadFramed() throws {
        writeHead("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", chunked: true)
        codec.write(.body(.byteBuffer(ByteBuffer(string: "hello"))), promise: nil)
        codec.write(.body(.byteBuffer(ByteBuffer())), promise: nil)
        codec.write(.end(nil), promise: nil)
        channel.flush()
        XCTAssertEqual(try written(), ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"])
    }

    func testALargeBodyFollowsTheHeadAsItsOwnWriteInOrder() throws {
        let large = String(repeating: "x", count: HTTP1ServerCodec.joinedBodyLimit + 1)
        writeHead("HTTP/1.1 200 OK\r\ncontent-length: \(large.utf8.count + 1)\r\n\r\n")
        codec.write(.body(.byteBuffer(ByteBuffer(string: large))), promise: nil)
        codec.write(.body(.byteBuffer(ByteBuffer(string: "y"))), promise: nil)
        channel.flush()
        XCTAssertEqual(try written(), ["HTTP/1.1 200 OK\r\ncontent-length: \(large.utf8.count + 1)\r\n\r\n", large, "y"])
    }

    func testAPromiseOnAJoinedPartCompletesWithTheWrite() throws {
        writeHead("HTTP/1.1 204 No Content\r\n\r\n")
        let ended = channel.eventLoop.makePromise(of: Void.self)
        var completed = false
        ended.futureResult.assumeIsolated().whenSuccess { completed = true }
        codec.write(.end(nil), promise: ended)
        channel.flush()
        XCTAssertTrue(completed)
        XCTAssertEqual(try written(), ["HTTP/1.1 204 No Content\r\n\r\n"])
    }

    func testTunnelBytesAndAnotherHeadGoAfterTheHeldHead() throws {
        writeHead("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        writeHead("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n")
        codec.writeTunnelBytes(ByteBuffer(string: "raw"), promise: nil)
        channel.flush()
        XCTAssertEqual(
            try written(),
            ["HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n", "raw"]
        )
    }
}
