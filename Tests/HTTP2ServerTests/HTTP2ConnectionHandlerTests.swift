import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import XCTest

@testable import HTTP2Server

/// The connection handler at the byte level: frames in through an EmbeddedChannel, frames out
/// read back, a delegate of the test's own in place of the gateway's proxy.
final class HTTP2ConnectionHandlerTests: XCTestCase {
    private var channel: EmbeddedChannel!
    private var registry: Registry!
    private var delegates: [RecordingDelegate] = []
    private var encoder = HPACKEncoder(allocator: ByteBufferAllocator(), useHuffmanEncoding: false)
    private var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
    /// Outbound bytes not yet cut into frames.
    private var unread = ByteBuffer()
    /// Whether new delegates take request parts as they come.
    private var delegatesRead = true

    override func setUpWithError() throws {
        channel = EmbeddedChannel()
        registry = Registry(eventLoop: channel.embeddedEventLoop)
        let limits = HTTP2ConnectionLimits(
            maxConcurrentStreams: 4,
            maxHeaderListSize: 16 * 1024,
            windowTarget: 65_535,
            connectionWindowTarget: 65_535,
            idleTimeout: .seconds(60),
            graceTime: .seconds(5),
            sendTimeout: .seconds(10)
        )
        let handler = HTTP2ConnectionHandler(registry: registry, limits: limits) { [unowned self] in
            let delegate = RecordingDelegate(reads: delegatesRead)
            delegates.append(delegate)
            return delegate
        }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try send(HTTP2Wire.preface + frame(.settings, 0, 0))
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
    }

    // MARK: requests and answers

    func testARequestReachesItsDelegateAndItsAnswerLeavesInTwoFrames() throws {
        try send(headers(1, ["GET", "/a"], endStream: true))
        let delegate = try XCTUnwrap(delegates.first)
        XCTAssertEqual(delegate.heads.map(\.uri), ["/a"])
        XCTAssertTrue(delegate.ended)

        delegate.answer(status: .ok, body: "hello")
        let frames = try readFrames()
        let answer = frames.filter { $0.stream == 1 }
        XCTAssertEqual(answer.map(\.type), [HTTP2Wire.FrameType.headers.rawValue, HTTP2Wire.FrameType.data.rawValue])
        XCTAssertEqual(answer.last?.flags ?? 0 & HTTP2Wire.Flag.endStream, HTTP2Wire.Flag.endStream)
        XCTAssertEqual(String(buffer: answer[1].payload), "hello")
        var block = answer[0].payload
        let fields = try decoder.decodeHeaders(from: &block)
        XCTAssertEqual(fields[":status"], ["200"])
        XCTAssertTrue(delegate.closed, "a stream ended both ways is over")
    }

    func testARequestBodyWaitsForItsDelegateAndItsWindowWithIt() throws {
        delegatesRead = false
        try send(headers(1, ["POST", "/upload"], endStream: false))
        let delegate = try XCTUnwrap(delegates.first)
        _ = try readFrames()
        for _ in 0..<5 { try send(frame(.data, 0, 1, Array(repeating: 0x61, count: 10_000))) }
        try send(frame(.data, HTTP2Wire.Flag.endStream, 1, Array(repeating: 0x62, count: 10_000)))
        XCTAssertTrue(try readFrames().filter { $0.type == HTTP2Wire.FrameType.windowUpdate.rawValue }.isEmpty, "nothing given back while held")
        XCTAssertEqual(delegate.bodyBytes, 0)

        delegate.startReading()
        XCTAssertEqual(delegate.bodyBytes, 60_000)
        XCTAssertTrue(delegate.ended)
        let updates = try readFrames().filter { $0.type == HTTP2Wire.FrameType.windowUpdate.rawValue }
        XCTAssertEqual(updates.map(\.stream), [0], "the connection's window back once taken; the ended stream's not")
    }

    func testStreamsOverTheConcurrencyLimitAreRefused() throws {
        for id in stride(from: UInt32(1), through: 9, by: 2) {
            try send(headers(id, ["GET", "/slow"], endStream: true))
        }
        let resets = try readFrames().filter { $0.type == HTTP2Wire.FrameType.rstStream.rawValue }
        XCTAssertEqual(resets.map(\.stream), [9])
        XCTAssertEqual(resets.first?.payload.getInteger(at: 0, as: UInt32.self), HTTP2Wire.ErrorCode.refusedStream.rawValue)
        XCTAssertEqual(delegates.count, 4)
    }

    // MARK: stream rules (RFC 9113, 5.1 and 5.1.1)

    func testAStreamBelowOneAlreadyUsedIsAConnectionError() throws {
        try send(headers(5, ["GET", "/"], endStream: true))
        try send(headers(3, ["GET", "/"], endStream: true))
        XCTAssertEqual(try goAwayCode(), HTTP2Wire.ErrorCode.protocolError.rawValue)
        XCTAssertFalse(channel.isActive)
    }

    func testDataOnAStreamTheClientEndedIsStreamClosed() throws {
        try send(headers(1, ["GET", "/"], endStream: true))
        try send(frame(.data, 0, 1, [1, 2, 3]))
        let reset = try readFrames().first { $0.type == HTTP2Wire.FrameType.rstStream.rawValue && $0.stream == 1 }
        XCTAssertEqual(reset?.payload.getInteger(at: 0, as: UInt32.self), HTTP2Wire.ErrorCode.streamClosed.rawValue)
        XCTAssertTrue(channel.isActive, "a stream error, not the connection's")
    }

    func testDataOnAnIdleStreamIsAConnectionError() throws {
        try send(frame(.data, 0, 7, [1]))
        XCTAssertEqual(try goAwayCode(), HTTP2Wire.ErrorCode.protocolError.rawValue)
    }

    func testAnInitialWindowThatOverflowsAStreamWindowIsAFlowControlError() throws {
        try send(headers(1, ["GET", "/"], endStream: true))
        try send(frame(.windowUpdate, 0, 1, bytes(UInt32(Int32.max) - 65_535)))
        try send(frame(.settings, 0, 0, settingBytes(0x4, 65_536)))
        XCTAssertEqual(try goAwayCode(), HTTP2Wire.ErrorCode.flowControlError.rawValue)
    }

    // MARK: floods

    func testPingFloodsEndTheConnectionCalmly() throws {
        var flood: [UInt8] = []
        for _ in 0..<150 { flood += frame(.ping, 0, 0, Array(repeating: 0, count: 8)) }
        try send(flood)
        XCTAssertEqual(try goAwayCode(), HTTP2Wire.ErrorCode.enhanceYourCalm.rawValue)
    }

    func testSettingsFloodsEndTheConnectionCalmly() throws {
        var flood: [UInt8] = []
        for _ in 0..<150 { flood += frame(.settings, 0, 0) }
        try send(flood)
        XCTAssertEqual(try goAwayCode(), HTTP2Wire.ErrorCode.enhanceYourCalm.rawValue)
    }

    func testEmptyDataFloodsEndTheConnectionCalmly() throws {
        delegatesRead = false
        try send(headers(1, ["POST", "/"], endStream: false))
        var flood: [UInt8] = []
        for _ in 0..<1_500 { flood += frame(.data, 0, 1) }
        try send(flood)
        XCTAssertEqual(try goAwayCode(), HTTP2Wire.ErrorCode.enhanceYourCalm.rawValue)
    }

    func testResetFloodsEndTheConnectionCalmly() throws {
        var flood: [UInt8] = []
        for index in 0..<300 {
            let id = UInt32(2 * index + 1)
            flood += headers(id, ["GET", "/"], endStream: false) + frame(.rstStream, 0, id, bytes(HTTP2Wire.ErrorCode.cancel.rawValue))
        }
        try send(flood)
        XCTAssertEqual(try goAwayCode(), HTTP2Wire.ErrorCode.enhanceYourCalm.rawValue)
        XCTAssertTrue(delegates.allSatisfy(\.closed), "every reset stream's delegate was told")
    }

    // MARK: the connection's end

    func testADrainSendsTwoGoAwaysAndLetsTheOpenStreamFinish() throws {
        try send(headers(1, ["GET", "/"], endStream: true))
        registry.drainAll()
        let first = try readFrames()
        let firstGoAway = try XCTUnwrap(first.first { $0.type == HTTP2Wire.FrameType.goAway.rawValue })
        XCTAssertEqual(firstGoAway.payload.getInteger(at: 0, as: UInt32.self), HTTP2Wire.maxStream, "first: any stream on its way")
        let ping = try XCTUnwrap(first.first { $0.type == HTTP2Wire.FrameType.ping.rawValue })

        try send(frame(.ping, HTTP2Wire.Flag.ack, 0, Array(ping.payload.readableBytesView)))
        let second = try XCTUnwrap(try readFrames().first { $0.type == HTTP2Wire.FrameType.goAway.rawValue })
        XCTAssertEqual(second.payload.getInteger(at: 0, as: UInt32.self), 1, "second: the last stream served")
        XCTAssertTrue(channel.isActive, "stream 1 is still open")

        delegates[0].answer(status: .ok, body: "done")
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive, "closed once its stream finished")
    }

    /// Deadlines are kept on the loop's own clock: read on another, a timer re-armed itself for a
    /// deadline the loop had passed, and fired again at once, until the two clocks agreed.
    func testAnIdleConnectionClosesWhenItsLoopsClockSaysSo() throws {
        _ = try readFrames()
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        XCTAssertTrue(channel.isActive, "within the idle timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertEqual(try goAwayCode(), HTTP2Wire.ErrorCode.noError.rawValue)
        XCTAssertFalse(channel.isActive, "closed once idle for the idle timeout")
    }

    func testTheIdleTimeoutStartsAgainWhenTheLastStreamEnds() throws {
        channel.embeddedEventLoop.advanceTime(by: .seconds(50))
        try send(headers(1, ["GET", "/"], endStream: true))
        delegates[0].answer(status: .ok, body: "done")
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        XCTAssertTrue(channel.isActive, "idle for 59 s since its stream ended")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertFalse(channel.isActive)
    }

    func testADrainWhosePingIsNeverAnsweredClosesAfterTheGraceTime() throws {
        try send(headers(1, ["GET", "/"], endStream: true))
        registry.drainAll()
        _ = try readFrames()
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        XCTAssertTrue(channel.isActive, "within the grace time")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertFalse(channel.isActive, "closed when the grace time ran out")
        XCTAssertTrue(delegates[0].closed)
    }

    func testASocketThatTakesNothingForTheSendTimeoutIsClosedWithItsStreams() throws {
        try send(headers(1, ["GET", "/"], endStream: true))
        _ = try readFrames()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        XCTAssertTrue(channel.isActive, "within the send timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertFalse(channel.isActive, "closed once the socket took nothing for the send timeout")
        XCTAssertTrue(delegates[0].closed, "its stream gives back what it holds")
    }

    func testASocketThatTakesBytesAgainWithinTheSendTimeoutStaysOpen() throws {
        try send(headers(1, ["GET", "/"], endStream: true))
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        XCTAssertTrue(channel.isActive, "each stall is timed from its own start")
        XCTAssertFalse(delegates[0].closed)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertFalse(channel.isActive)
    }

    func testAStreamWhoseQueueFillsTellsItsDelegateAtOnce() throws {
        // The client's window for stream 1 is zero: everything written waits in its queue.
        try send(frame(.settings, 0, 0, settingBytes(0x4, 0)))
        try send(headers(1, ["GET", "/"], endStream: true))
        let delegate = try XCTUnwrap(delegates.first)
        delegate.write(status: .ok, bodyBytes: HTTP2ClientStream.queuedBytesLimit - 1)
        XCTAssertEqual(delegate.writabilityReports, [], "under the queue's limit")
        delegate.write(bodyBytes: 1)
        XCTAssertEqual(delegate.writabilityReports, [false], "told inside the write that filled the queue")
        delegate.write(bodyBytes: 1)
        XCTAssertEqual(delegate.writabilityReports, [false], "once per filling")
        try send(frame(.windowUpdate, 0, 1, bytes(UInt32(HTTP2ClientStream.queuedBytesLimit))))
        XCTAssertEqual(delegate.writabilityReports, [false, true], "and again as the window lets it drain")
    }

    // MARK: helpers

    private func send(_ bytes: [UInt8]) throws {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.run()
    }

    private func frame(_ type: HTTP2Wire.FrameType, _ flags: UInt8, _ stream: UInt32, _ payload: [UInt8] = []) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeHTTP2FrameHeader(length: payload.count, type: type, flags: flags, stream: stream)
        buffer.writeBytes(payload)
        return Array(buffer.readableBytesView)
    }

    private func headers(_ stream: UInt32, _ request: [String], endStream: Bool) -> [UInt8] {
        var block = ByteBuffer()
        try! encoder.beginEncoding(allocator: ByteBufferAllocator())
        try! encoder.append(
            headers: HPACKHeaders([(":method", request[0]), (":scheme", "https"), (":path", request[1]), (":authority", "example.com")])
        )
        var encoded = try! encoder.endEncoding()
        block.writeBuffer(&encoded)
        let flags = HTTP2Wire.Flag.endHeaders | (endStream ? HTTP2Wire.Flag.endStream : 0)
        return frame(.headers, flags, stream, Array(block.readableBytesView))
    }

    private func bytes(_ value: UInt32) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(value)
        return Array(buffer.readableBytesView)
    }

    private func settingBytes(_ id: UInt16, _ value: UInt32) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(id)
        buffer.writeInteger(value)
        return Array(buffer.readableBytesView)
    }

    private struct Frame {
        let type: UInt8
        let flags: UInt8
        let stream: UInt32
        let payload: ByteBuffer
    }

    /// The frames written since the last call.
    private func readFrames() throws -> [Frame] {
        channel.embeddedEventLoop.run()
        while var written = try channel.readOutbound(as: ByteBuffer.self) { unread.writeBuffer(&written) }
        var frames: [Frame] = []
        while let header = unread.getInteger(at: unread.readerIndex, as: UInt32.self) {
            let length = Int(header >> 8)
            guard unread.readableBytes >= 9 + length else { break }
            unread.moveReaderIndex(forwardBy: 3)
            let type: UInt8 = unread.readInteger()!
            let flags: UInt8 = unread.readInteger()!
            let stream: UInt32 = unread.readInteger()! & 0x7FFF_FFFF
            frames.append(Frame(type: type, flags: flags, stream: stream, payload: unread.readSlice(length: length)!))
        }
        return frames
    }

    /// The error code of the GOAWAY sent since the last read.
    private func goAwayCode() throws -> UInt32? {
        let goAway = try readFrames().first { $0.type == HTTP2Wire.FrameType.goAway.rawValue }
        return goAway?.payload.getInteger(at: 4, as: UInt32.self)
    }
}

/// A delegate that records what its stream hands it, and answers when told.
private final class RecordingDelegate: HTTP2StreamDelegate {
    private(set) var heads: [HTTPRequestHead] = []
    private(set) var bodyBytes = 0
    private(set) var ended = false
    private(set) var closed = false
    private var reads: Bool
    private var stream: HTTP2ClientStream?

    init(reads: Bool) {
        self.reads = reads
    }

    func attach(to stream: HTTP2ClientStream) { self.stream = stream }
    func mayRead() -> Bool { reads || heads.isEmpty }

    func receive(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head): heads.append(head)
        case .body(let body): bodyBytes += body.readableBytes
        case .end: ended = true
        }
    }

    func receiveTunnelBytes(_ bytes: ByteBuffer) { bodyBytes += bytes.readableBytes }
    func clientEndedTunnel() { ended = true }
    func clientReadComplete() {}
    /// What the stream said of its writability at each report.
    private(set) var writabilityReports: [Bool] = []
    func clientWritabilityChanged() { writabilityReports.append(stream?.isWritable ?? false) }
    func clientClosed() {
        closed = true
        stream = nil
    }

    func startReading() {
        reads = true
        stream?.deliverBufferedParts()
    }

    /// A head, or more body, without an end.
    func write(status: HTTPResponseStatus? = nil, bodyBytes: Int) {
        if let status { stream?.write(.head(HTTPResponseHead(version: .http2, status: status))) }
        stream?.write(.body(.byteBuffer(ByteBuffer(repeating: 0x61, count: bodyBytes))))
        stream?.flush()
    }

    func answer(status: HTTPResponseStatus, body: String) {
        stream?.write(.head(HTTPResponseHead(version: .http2, status: status, headers: ["content-length": "\(body.utf8.count)"])))
        stream?.write(.body(.byteBuffer(ByteBuffer(string: body))))
        stream?.writeAndFlush(.end(nil), promise: nil)
    }
}

/// The loop's connections, drained on demand.
private final class Registry: HTTP2ConnectionRegistry {
    let eventLoop: any EventLoop
    private(set) var draining = false
    private var connections: [ObjectIdentifier: any DrainableConnection] = [:]

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func register(_ connection: any DrainableConnection) { connections[ObjectIdentifier(connection)] = connection }
    func unregister(_ connection: any DrainableConnection) { connections[ObjectIdentifier(connection)] = nil }

    func drainAll() {
        draining = true
        for connection in connections.values { connection.drain() }
    }
}
