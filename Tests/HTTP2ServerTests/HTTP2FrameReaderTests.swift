@testable import HTTP2Server
import NIOCore
import XCTest

/// Frames cut from bytes as they arrive, in any pieces.
final class HTTP2FrameReaderTests: XCTestCase {
    private func frame(_ type: UInt8, _ flags: UInt8, _ stream: UInt32, _ payload: [UInt8] = []) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(payload.count) << 8 | UInt32(type))
        buffer.writeInteger(flags)
        buffer.writeInteger(stream)
        buffer.writeBytes(payload)
        return Array(buffer.readableBytesView)
    }

    private var start: [UInt8] { HTTP2Wire.preface + frame(4, 0, 0) }

    /// Every frame `bytes` holds, fed to a reader in pieces of `piece` bytes.
    private func read(_ bytes: [UInt8], piece: Int = .max) throws -> [HTTP2FrameReader.Frame] {
        var reader = HTTP2FrameReader(maxHeaderBlockBytes: 1000)
        var frames: [HTTP2FrameReader.Frame] = []
        var offset = 0
        while offset < bytes.count {
            var chunk = ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + piece)])
            offset += chunk.readableBytes
            reader.append(&chunk)
            while let frame = try reader.next() { frames.append(frame) }
        }
        return frames
    }

    private func connectionError(_ bytes: [UInt8]) -> HTTP2Wire.ConnectionError? {
        do {
            _ = try read(bytes)
            return nil
        } catch {
            return error as? HTTP2Wire.ConnectionError
        }
    }

    func testFramesSplitAnywhereAreReassembled() throws {
        let bytes = start + frame(0, 1, 1, Array("hello".utf8)) + frame(6, 0, 0, [1, 2, 3, 4, 5, 6, 7, 8])
        for piece in [1, 2, 7, 9, 10, 1000] {
            let frames = try read(bytes, piece: piece)
            XCTAssertEqual(frames.count, 3, "pieces of \(piece)")
            guard case .settings(let settings) = frames[0], settings.isEmpty else { return XCTFail("\(frames[0])") }
            guard case .data(1, let payload, 5, true) = frames[1] else { return XCTFail("\(frames[1])") }
            XCTAssertEqual(String(buffer: payload), "hello")
            guard case .ping(0x0102_0304_0506_0708) = frames[2] else { return XCTFail("\(frames[2])") }
        }
    }

    /// Frame headers of `bytes` after the preface and SETTINGS: (length, type, flags, stream).
    private func frameHeaders(_ bytes: ByteBuffer) -> [(Int, UInt8, UInt8, UInt32)] {
        var buffer = bytes
        var headers: [(Int, UInt8, UInt8, UInt32)] = []
        while let word: UInt32 = buffer.readInteger(), let flags: UInt8 = buffer.readInteger(), let stream: UInt32 = buffer.readInteger() {
            headers.append((Int(word >> 8), UInt8(word & 0xFF), flags, stream))
            buffer.moveReaderIndex(forwardBy: Int(word >> 8))
        }
        return headers
    }

    func testAHeaderBlockOverTheFrameSizeIsWrittenInContinuationFrames() throws {
        let block = (0..<40).map { UInt8($0) }
        var written = ByteBuffer()
        written.writeHTTP2SettingsAck()
        written.writeHTTP2HeaderBlock(stream: 7, endStream: true, maxFrameSize: 16) { $0.writeBytes(block) }
        let headers = frameHeaders(written)
        XCTAssertEqual(headers.map(\.0), [0, 16, 16, 8])
        XCTAssertEqual(headers.map(\.1), [4, 1, 9, 9], "SETTINGS, then HEADERS and two CONTINUATIONs")
        XCTAssertEqual(headers.map(\.2), [1, 0x1, 0, 0x4], "END_STREAM on HEADERS, END_HEADERS on the last")
        XCTAssertEqual(headers.dropFirst().map(\.3), [7, 7, 7])
        // Read back, the block is whole again.
        let frames = try read(start + Array(written.readableBytesView.dropFirst(9)))
        guard case .headers(7, let joined, true) = frames.last else { return XCTFail("\(frames)") }
        XCTAssertEqual(Array(joined.readableBytesView), block)
    }

    func testAHeaderBlockWithinTheFrameSizeIsOneFrame() {
        var written = ByteBuffer()
        written.writeHTTP2HeaderBlock(stream: 3, endStream: false, maxFrameSize: 16) { $0.writeBytes([1, 2, 3]) }
        let headers = frameHeaders(written)
        XCTAssertEqual(headers.count, 1)
        XCTAssertEqual(headers.first?.0, 3)
        XCTAssertEqual(headers.first?.2, 0x4, "END_HEADERS, and no END_STREAM")
    }

    func testPaddingIsStrippedButCountsForFlowControl() throws {
        let frames = try read(start + frame(0, 0x8 | 0x1, 3, [2] + Array("ab".utf8) + [0, 0]))
        guard case .data(3, let payload, 5, true) = frames[1] else { return XCTFail("\(frames[1])") }
        XCTAssertEqual(String(buffer: payload), "ab")
        XCTAssertEqual(connectionError(start + frame(0, 0x8, 3, [9, 1]))?.code, .protocolError, "padding longer than the frame")
    }

    func testContinuationFramesJoinTheirHeaderBlock() throws {
        let frames = try read(start + frame(1, 0x1, 1, [1, 2]) + frame(9, 0, 1, [3]) + frame(9, 0x4, 1, [4, 5]))
        // The frames before the block's end have nothing to act on yet.
        XCTAssertEqual(frames.count, 4)
        guard case .ignored = frames[1], case .ignored = frames[2] else { return XCTFail("\(frames)") }
        guard case .headers(1, let block, true) = frames[3] else { return XCTFail("\(frames)") }
        XCTAssertEqual(Array(block.readableBytesView), [1, 2, 3, 4, 5])
    }

    func testAHeaderBlockIsNotInterrupted() {
        XCTAssertEqual(connectionError(start + frame(1, 0, 1, [1]) + frame(6, 0, 0, Array(repeating: 0, count: 8)))?.code, .protocolError)
        XCTAssertEqual(connectionError(start + frame(1, 0, 1, [1]) + frame(9, 0x4, 3, [2]))?.code, .protocolError, "another stream's CONTINUATION")
        XCTAssertEqual(connectionError(start + frame(9, 0x4, 1, [2]))?.code, .protocolError, "CONTINUATION without HEADERS")
    }

    func testAHeaderBlockIsBounded() {
        let piece = Array(repeating: UInt8(0), count: 600)
        XCTAssertEqual(connectionError(start + frame(1, 0, 1, piece) + frame(9, 0x4, 1, piece))?.code, .enhanceYourCalm)
    }

    func testAHeaderBlockTakesABoundedNumberOfContinuationFrames() throws {
        let within = start + frame(1, 0x1, 1, [1]) + Array(repeating: frame(9, 0, 1), count: 31).joined() + frame(9, 0x4, 1, [2])
        guard case .headers(1, _, true)? = try read(within).last else { return XCTFail("32 CONTINUATIONs are a block") }
        let flood = start + frame(1, 0x1, 1, [1]) + Array(repeating: frame(9, 0, 1), count: 33).joined()
        XCTAssertEqual(connectionError(flood)?.code, .enhanceYourCalm, "empty CONTINUATIONs count, though their bytes do not")
    }

    func testThePrefaceAndAFirstSettingsFrameAreRequired() {
        XCTAssertEqual(connectionError(Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))?.code, .protocolError)
        XCTAssertEqual(connectionError(HTTP2Wire.preface + frame(6, 0, 0, Array(repeating: 0, count: 8)))?.code, .protocolError)
        XCTAssertEqual(connectionError(HTTP2Wire.preface + frame(4, 0x1, 0))?.code, .protocolError, "an acknowledgement first")
    }

    func testFrameSizesAndStreamsAreChecked() {
        XCTAssertEqual(connectionError(start + frame(6, 0, 0, Array(repeating: 0, count: 16_385)))?.code, .frameSizeError)
        XCTAssertEqual(connectionError(start + frame(6, 0, 0, [1, 2, 3]))?.code, .frameSizeError, "PING of 3 bytes")
        XCTAssertEqual(connectionError(start + frame(3, 0, 1, [0, 0]))?.code, .frameSizeError, "RST_STREAM of 2 bytes")
        XCTAssertEqual(connectionError(start + frame(8, 0, 0, [0]))?.code, .frameSizeError, "WINDOW_UPDATE of 1 byte")
        XCTAssertEqual(connectionError(start + frame(4, 0, 0, [0, 1, 0]))?.code, .frameSizeError, "SETTINGS of 3 bytes")
        XCTAssertEqual(connectionError(start + frame(4, 0x1, 0, [0]))?.code, .frameSizeError, "SETTINGS ack with a payload")
        XCTAssertEqual(connectionError(start + frame(0, 0, 0, [1]))?.code, .protocolError, "DATA on stream 0")
        XCTAssertEqual(connectionError(start + frame(1, 0x4, 0, [1]))?.code, .protocolError, "HEADERS on stream 0")
        XCTAssertEqual(connectionError(start + frame(6, 0, 1, Array(repeating: 0, count: 8)))?.code, .protocolError, "PING on a stream")
        XCTAssertEqual(connectionError(start + frame(4, 0, 1))?.code, .protocolError, "SETTINGS on a stream")
        XCTAssertEqual(connectionError(start + frame(5, 0x4, 1, [0, 0, 0, 2]))?.code, .protocolError, "PUSH_PROMISE from a client")
        XCTAssertEqual(connectionError(start + frame(1, 0x4 | 0x20, 1, [0, 0, 0, 1, 16]))?.code, .protocolError, "depends on itself")
    }

    func testPriorityOfTheWrongSizeIsAStreamError() throws {
        let frames = try read(start + frame(2, 0, 5, [0, 0, 0]) + frame(2, 0, 5, [0, 0, 0, 3, 16]))
        guard case .streamError(5, .frameSizeError) = frames[1] else { return XCTFail("\(frames[1])") }
        guard case .noOp = frames[2] else { return XCTFail("\(frames[2])") }
    }

    func testUnknownFrameTypesAreIgnoredAndPingAnswersTold() throws {
        let frames = try read(start + frame(0xFA, 0xFF, 7, [1, 2, 3]) + frame(6, 0x1, 0, Array(repeating: 0, count: 8)))
        guard case .noOp = frames[1], case .pingAck(0) = frames[2] else { return XCTFail("\(frames)") }
    }
}

final class HTTP2FrameBudgetTests: XCTestCase {
    func testResetsOverTheMaximumInOneWindowAreRefused() {
        var budget = HTTP2FrameBudget(maximum: 3, window: .seconds(30))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        XCTAssertTrue(budget.spend(at: start))
        XCTAssertTrue(budget.spend(at: start + .seconds(1)))
        XCTAssertTrue(budget.spend(at: start + .seconds(2)))
        XCTAssertFalse(budget.spend(at: start + .seconds(3)), "a fourth reset within 30 s")
    }

    func testANewWindowStartsAfreshOnceTheLastHasPassed() {
        var budget = HTTP2FrameBudget(maximum: 2, window: .seconds(30))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        XCTAssertTrue(budget.spend(at: start))
        XCTAssertTrue(budget.spend(at: start + .seconds(29)))
        XCTAssertTrue(budget.spend(at: start + .seconds(30)), "a browser's occasional resets never add up")
        XCTAssertTrue(budget.spend(at: start + .seconds(31)))
        XCTAssertFalse(budget.spend(at: start + .seconds(32)))
    }
}
