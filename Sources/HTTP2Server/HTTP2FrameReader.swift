import NIOCore

/// Cuts a connection's inbound bytes into HTTP/2 frames (RFC 9113, 4 and 6): checks the
/// preface, that the first frame is SETTINGS, each frame's size and the fields every frame of
/// its kind must have; strips padding; and joins a header block's CONTINUATION frames to its
/// HEADERS. What a frame means for the connection's streams is HTTP2ConnectionHandler's business.
package struct HTTP2FrameReader {
    package enum Frame {
        /// `flowControlled`: the frame's whole payload, padding included, which counts against
        /// the windows.
        case data(stream: UInt32, payload: ByteBuffer, flowControlled: Int, endStream: Bool)
        /// A complete header block (HPACK-encoded, CONTINUATIONs joined).
        case headers(stream: UInt32, block: ByteBuffer, endStream: Bool)
        case rstStream(stream: UInt32, code: HTTP2Wire.ErrorCode)
        case settings([(UInt16, UInt32)])
        case settingsAck
        case ping(UInt64)
        case pingAck(UInt64)
        case goAway
        case windowUpdate(stream: UInt32, increment: Int)
        /// A frame malformed in a way that concerns only its stream.
        case streamError(stream: UInt32, code: HTTP2Wire.ErrorCode)
        /// PRIORITY and frames of unknown kinds: nothing to act on, but counted (a flood of them is
        /// work for nothing).
        case noOp
        /// The frames of an unfinished header block.
        case ignored
    }

    /// Bounds a header block across its CONTINUATION frames (each frame alone is bounded by the
    /// frame size): a client cannot make the server buffer an endless block.
    package let maxHeaderBlockBytes: Int

    private var buffered: ByteBuffer?
    private var prefaceSeen = false
    private var settingsSeen = false
    /// A HEADERS frame without END_HEADERS, waiting for its CONTINUATION frames.
    private var partialBlock: (stream: UInt32, endStream: Bool, block: ByteBuffer, continuations: Int)?
    /// CONTINUATION frames one header block may take: the byte bound alone lets empty ones
    /// through without end.
    package static let maxContinuationFrames = 32

    package init(maxHeaderBlockBytes: Int) {
        self.maxHeaderBlockBytes = maxHeaderBlockBytes
    }

    package mutating func append(_ bytes: inout ByteBuffer) {
        guard var leftover = buffered.take() else {
            buffered = bytes
            return
        }
        // The start of a frame the last read cut off, and the new bytes, in a buffer of their
        // own. Appending to the old buffer instead would keep every byte ever read on it (a
        // buffer grows without giving back what was read) for as long as reads keep ending
        // inside frames, as they do under a steady upload.
        var joined = ByteBufferAllocator().buffer(capacity: leftover.readableBytes + bytes.readableBytes)
        joined.writeBuffer(&leftover)
        joined.writeBuffer(&bytes)
        buffered = joined
    }

    /// The next complete frame, or nil until more bytes arrive.
    package mutating func next() throws -> Frame? {
        guard var buffer = buffered.take() else { return nil }
        defer { if buffer.readableBytes > 0 { buffered = buffer } }
        if !prefaceSeen {
            let preface = HTTP2Wire.preface
            guard buffer.readableBytes >= preface.count else { return nil }
            guard buffer.readBytes(length: preface.count) == preface else {
                throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "not the HTTP/2 connection preface")
            }
            prefaceSeen = true
        }
        guard let header = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        let length = Int(header >> 8)
        guard length <= HTTP2Wire.defaultMaxFrameSize else {
            throw HTTP2Wire.ConnectionError(code: .frameSizeError, reason: "a frame of \(length) bytes")
        }
        guard buffer.readableBytes >= HTTP2Wire.frameHeaderSize + length else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        let type = UInt8(truncatingIfNeeded: header)
        let flags: UInt8 = buffer.readInteger()!
        let stream: UInt32 = buffer.readInteger()! & 0x7FFF_FFFF
        let payload = buffer.readSlice(length: length)!
        return try frame(type: type, flags: flags, stream: stream, payload: payload)
    }

    private mutating func frame(type rawType: UInt8, flags: UInt8, stream: UInt32, payload: ByteBuffer) throws -> Frame {
        let type = HTTP2Wire.FrameType(rawValue: rawType)
        if !settingsSeen {
            guard type == .settings, flags & HTTP2Wire.Flag.ack == 0 else {
                throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "the first frame is not SETTINGS")
            }
            settingsSeen = true
        }
        if let partial = partialBlock {
            guard type == .continuation, stream == partial.stream else {
                throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "a header block interrupted")
            }
        }
        guard let type else { return .noOp }
        switch type {
        case .data:
            try requireStream(stream, type)
            var data = payload
            try stripPadding(&data, flags: flags)
            return .data(stream: stream, payload: data, flowControlled: payload.readableBytes, endStream: flags & HTTP2Wire.Flag.endStream != 0)
        case .headers:
            try requireStream(stream, type)
            var block = payload
            try stripPadding(&block, flags: flags)
            if flags & HTTP2Wire.Flag.priority != 0 {
                guard let dependency: UInt32 = block.readInteger(), block.readInteger(as: UInt8.self) != nil else {
                    throw HTTP2Wire.ConnectionError(code: .frameSizeError, reason: "HEADERS too short for its priority")
                }
                // A stream error by the RFC; a connection error here, so that no decoded block
                // needs to be thrown away afterwards.
                guard dependency & 0x7FFF_FFFF != stream else {
                    throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "stream \(stream) depends on itself")
                }
            }
            return try headerBlock(block, stream: stream, flags: flags)
        case .continuation:
            guard var partial = partialBlock else {
                throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "CONTINUATION without HEADERS")
            }
            partialBlock = nil
            partial.continuations += 1
            guard partial.continuations <= Self.maxContinuationFrames else {
                throw HTTP2Wire.ConnectionError(code: .enhanceYourCalm, reason: "a header block of over \(Self.maxContinuationFrames) CONTINUATION frames")
            }
            var more = payload
            guard partial.block.readableBytes + more.readableBytes <= maxHeaderBlockBytes else {
                throw HTTP2Wire.ConnectionError(code: .enhanceYourCalm, reason: "a header block over \(maxHeaderBlockBytes) bytes")
            }
            partial.block.writeBuffer(&more)
            return try headerBlock(
                partial.block,
                stream: stream,
                flags: flags | (partial.endStream ? HTTP2Wire.Flag.endStream : 0),
                continuations: partial.continuations
            )
        case .priority:
            try requireStream(stream, type)
            guard payload.readableBytes == 5 else { return .streamError(stream: stream, code: .frameSizeError) }
            if payload.getInteger(at: payload.readerIndex, as: UInt32.self)! & 0x7FFF_FFFF == stream {
                return .streamError(stream: stream, code: .protocolError)
            }
            return .noOp
        case .rstStream:
            try requireStream(stream, type)
            try requireLength(payload, 4, type)
            return .rstStream(stream: stream, code: .init(rawValue: payload.getInteger(at: payload.readerIndex)!))
        case .settings:
            try requireConnection(stream, type)
            if flags & HTTP2Wire.Flag.ack != 0 {
                try requireLength(payload, 0, type)
                return .settingsAck
            }
            guard payload.readableBytes % 6 == 0 else {
                throw HTTP2Wire.ConnectionError(code: .frameSizeError, reason: "SETTINGS of \(payload.readableBytes) bytes")
            }
            var values = payload
            var settings: [(UInt16, UInt32)] = []
            settings.reserveCapacity(values.readableBytes / 6)
            while let id: UInt16 = values.readInteger(), let value: UInt32 = values.readInteger() {
                settings.append((id, value))
            }
            return .settings(settings)
        case .pushPromise:
            throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "PUSH_PROMISE from a client")
        case .ping:
            try requireConnection(stream, type)
            try requireLength(payload, 8, type)
            let value: UInt64 = payload.getInteger(at: payload.readerIndex)!
            return flags & HTTP2Wire.Flag.ack != 0 ? .pingAck(value) : .ping(value)
        case .goAway:
            try requireConnection(stream, type)
            guard payload.readableBytes >= 8 else {
                throw HTTP2Wire.ConnectionError(code: .frameSizeError, reason: "GOAWAY too short")
            }
            return .goAway
        case .windowUpdate:
            try requireLength(payload, 4, type)
            let increment = Int(payload.getInteger(at: payload.readerIndex, as: UInt32.self)! & 0x7FFF_FFFF)
            return .windowUpdate(stream: stream, increment: increment)
        }
    }

    private mutating func headerBlock(_ block: ByteBuffer, stream: UInt32, flags: UInt8, continuations: Int = 0) throws -> Frame {
        let endStream = flags & HTTP2Wire.Flag.endStream != 0
        guard block.readableBytes <= maxHeaderBlockBytes else {
            throw HTTP2Wire.ConnectionError(code: .enhanceYourCalm, reason: "a header block over \(maxHeaderBlockBytes) bytes")
        }
        if flags & HTTP2Wire.Flag.endHeaders != 0 {
            return .headers(stream: stream, block: block, endStream: endStream)
        }
        partialBlock = (stream, endStream, block, continuations)
        return .ignored
    }

    private func stripPadding(_ payload: inout ByteBuffer, flags: UInt8) throws {
        guard flags & HTTP2Wire.Flag.padded != 0 else { return }
        guard let padding: UInt8 = payload.readInteger(), Int(padding) <= payload.readableBytes else {
            throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "padding longer than its frame")
        }
        payload.moveWriterIndex(to: payload.writerIndex - Int(padding))
    }

    private func requireStream(_ stream: UInt32, _ type: HTTP2Wire.FrameType) throws {
        guard stream != 0 else {
            throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "\(type) on stream 0")
        }
    }

    private func requireConnection(_ stream: UInt32, _ type: HTTP2Wire.FrameType) throws {
        guard stream == 0 else {
            throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "\(type) on stream \(stream)")
        }
    }

    private func requireLength(_ payload: ByteBuffer, _ length: Int, _ type: HTTP2Wire.FrameType) throws {
        guard payload.readableBytes == length else {
            throw HTTP2Wire.ConnectionError(code: .frameSizeError, reason: "\(type) of \(payload.readableBytes) bytes")
        }
    }
}
