import NIOCore

/// The HTTP/2 wire format (RFC 9113) as far as a server of request streams needs it: frame
/// kinds, flags, error codes and settings, and the frames it writes.
package enum HTTP2Wire {
    /// What a client sends before its first frame.
    package static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    package static let frameHeaderSize = 9
    /// SETTINGS_MAX_FRAME_SIZE's initial value. This server never announces more, so it is also
    /// the largest frame it accepts.
    package static let defaultMaxFrameSize = 16_384
    /// Every window's size before SETTINGS or WINDOW_UPDATE change it.
    package static let defaultWindow = 65_535
    package static let maxWindow = Int(Int32.max)
    package static let maxStream = UInt32(Int32.max)

    package enum FrameType: UInt8 {
        case data = 0, headers, priority, rstStream, settings, pushPromise, ping, goAway, windowUpdate, continuation
    }

    package enum Flag {
        package static let endStream: UInt8 = 0x1
        package static let ack: UInt8 = 0x1
        package static let endHeaders: UInt8 = 0x4
        package static let padded: UInt8 = 0x8
        package static let priority: UInt8 = 0x20
    }

    package struct ErrorCode: Equatable, CustomStringConvertible {
        package let rawValue: UInt32

        package init(rawValue: UInt32) {
            self.rawValue = rawValue
        }
        package static let noError = ErrorCode(rawValue: 0x0)
        package static let protocolError = ErrorCode(rawValue: 0x1)
        package static let internalError = ErrorCode(rawValue: 0x2)
        package static let flowControlError = ErrorCode(rawValue: 0x3)
        package static let streamClosed = ErrorCode(rawValue: 0x5)
        package static let frameSizeError = ErrorCode(rawValue: 0x6)
        package static let refusedStream = ErrorCode(rawValue: 0x7)
        package static let cancel = ErrorCode(rawValue: 0x8)
        package static let compressionError = ErrorCode(rawValue: 0x9)
        package static let enhanceYourCalm = ErrorCode(rawValue: 0xb)

        package var description: String { "0x" + String(rawValue, radix: 16) }
    }

    package enum Setting: UInt16 {
        case headerTableSize = 1, enablePush, maxConcurrentStreams, initialWindowSize, maxFrameSize, maxHeaderListSize
        /// RFC 8441: the server takes extended CONNECT (WebSocket over a stream).
        case enableConnectProtocol = 8
    }

    /// A violation that ends the whole connection: answered with GOAWAY, then the connection closes.
    package struct ConnectionError: Error, CustomStringConvertible {
        package let code: ErrorCode
        package let reason: String

        package init(code: ErrorCode, reason: String) {
            self.code = code
            self.reason = reason
        }
        package var description: String { "HTTP/2 connection error \(code): \(reason)" }
    }
}

extension ByteBuffer {
    package mutating func writeHTTP2FrameHeader(length: Int, type: HTTP2Wire.FrameType, flags: UInt8 = 0, stream: UInt32) {
        // 24 bits of length and 8 of type, then the flags and the stream (its top bit reserved).
        writeInteger(UInt32(length) << 8 | UInt32(type.rawValue))
        writeInteger(flags)
        writeInteger(stream & 0x7FFF_FFFF)
    }

    /// A header block `encode` writes, framed as HEADERS and, for a block over `maxFrameSize`,
    /// CONTINUATION frames. The block is encoded in place, after room for a frame header.
    package mutating func writeHTTP2HeaderBlock(stream: UInt32, endStream: Bool, maxFrameSize: Int, _ encode: (inout ByteBuffer) -> Void) {
        let start = writerIndex
        writeRepeatingByte(0, count: HTTP2Wire.frameHeaderSize)
        encode(&self)
        let length = writerIndex - start - HTTP2Wire.frameHeaderSize
        let endStreamFlag = endStream ? HTTP2Wire.Flag.endStream : 0
        if length <= maxFrameSize {
            setInteger(UInt32(length) << 8 | UInt32(HTTP2Wire.FrameType.headers.rawValue), at: start)
            setInteger(endStreamFlag | HTTP2Wire.Flag.endHeaders, at: start + 4)
            setInteger(stream & 0x7FFF_FFFF, at: start + 5)
            return
        }
        // Rare: the block is cut into frames, rewritten from where it began.
        var block = getSlice(at: start + HTTP2Wire.frameHeaderSize, length: length)!
        moveWriterIndex(to: start)
        var type = HTTP2Wire.FrameType.headers
        while block.readableBytes > 0 {
            var piece = block.readSlice(length: min(block.readableBytes, maxFrameSize))!
            let flags = (type == .headers ? endStreamFlag : 0) | (block.readableBytes == 0 ? HTTP2Wire.Flag.endHeaders : 0)
            writeHTTP2FrameHeader(length: piece.readableBytes, type: type, flags: flags, stream: stream)
            writeBuffer(&piece)
            type = .continuation
        }
    }

    package mutating func writeHTTP2Settings(_ settings: [(HTTP2Wire.Setting, Int)]) {
        writeHTTP2FrameHeader(length: settings.count * 6, type: .settings, stream: 0)
        for (setting, value) in settings {
            writeInteger(setting.rawValue)
            writeInteger(UInt32(value))
        }
    }

    package mutating func writeHTTP2SettingsAck() {
        writeHTTP2FrameHeader(length: 0, type: .settings, flags: HTTP2Wire.Flag.ack, stream: 0)
    }

    package mutating func writeHTTP2Ping(_ payload: UInt64, ack: Bool) {
        writeHTTP2FrameHeader(length: 8, type: .ping, flags: ack ? HTTP2Wire.Flag.ack : 0, stream: 0)
        writeInteger(payload)
    }

    package mutating func writeHTTP2GoAway(lastStream: UInt32, code: HTTP2Wire.ErrorCode, debug: String = "") {
        let debugBytes = debug.utf8.prefix(256)
        writeHTTP2FrameHeader(length: 8 + debugBytes.count, type: .goAway, stream: 0)
        writeInteger(lastStream & 0x7FFF_FFFF)
        writeInteger(code.rawValue)
        writeBytes(debugBytes)
    }

    package mutating func writeHTTP2RSTStream(_ stream: UInt32, code: HTTP2Wire.ErrorCode) {
        writeHTTP2FrameHeader(length: 4, type: .rstStream, stream: stream)
        writeInteger(code.rawValue)
    }

    package mutating func writeHTTP2WindowUpdate(_ stream: UInt32, increment: Int) {
        writeHTTP2FrameHeader(length: 4, type: .windowUpdate, stream: stream)
        writeInteger(UInt32(increment))
    }
}
