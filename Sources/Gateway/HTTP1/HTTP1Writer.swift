import HTTPFieldText
import NIOCore
import NIOHTTP1

/// Serialises the heads and the chunked framing the gateway writes on HTTP/1.1 connections, both
/// to clients and to upstreams. The framing headers are the caller's decision; these only write.
enum HTTP1Writer {
    /// - Returns: the body's framing, as the head written says.
    @discardableResult
    static func writeRequestHead(_ head: HTTPRequestHead, into buffer: inout ByteBuffer) -> RequestBodyFraming {
        writeRequestLine(method: head.method, uri: head.uri, into: &buffer)
        return writeFields(head.headers, into: &buffer)
    }

    /// `method SP uri SP HTTP/1.1 CRLF`.
    static func writeRequestLine(method: HTTPMethod, uri: String, into buffer: inout ByteBuffer) {
        method.rawValue.withUTF8Bytes { method in
            uri.withUTF8Bytes { uri in
                write(into: &buffer, atMost: method.count + uri.count + 12) { line in
                    line.append(method)
                    line.append(UInt8(ascii: " "))
                    line.append(uri)
                    line.append(" HTTP/1.1\r\n")
                }
            }
        }
    }

    /// - Returns: the body's framing, as the head written says.
    @discardableResult
    static func writeResponseHead(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) -> RequestBodyFraming {
        writeStatusLine(version: head.version, status: head.status, into: &buffer)
        return writeFields(head.headers, into: &buffer)
    }

    static func writeStatusLine(version: HTTPVersion, status: HTTPResponseStatus, into buffer: inout ByteBuffer) {
        let reason = status.reasonPhrase
        write(into: &buffer, atMost: reason.utf8.count + 15) { line in line.appendStatusLine(version: version, status: status, reason: reason) }
    }

    /// Fields, then the empty line: each field line written at once, its bytes copied as they
    /// are stored (a value holding bytes that are no UTF-8 goes through FieldText).
    /// - Returns: the framing the fields written give a body (read in the same pass, so that a
    ///   codec need not look through the fields again): chunked, a length, or none.
    @discardableResult
    static func writeFields(_ headers: HTTPHeaders, into buffer: inout ByteBuffer) -> RequestBodyFraming {
        var framing = RequestBodyFraming.none
        for (name, value) in headers {
            name.withUTF8Bytes { name in
                value.withUTF8Bytes { value in
                    if name.count == 14 && ASCIIText.equals(name, lowercased: "content-length") {
                        if framing == .none, let length = RequestBodyFraming.decimal(value) { framing = .length(length) }
                    } else if name.count == 17 && ASCIIText.equals(name, lowercased: "transfer-encoding") {
                        framing = ASCIIText.equals(value, lowercased: "chunked") ? .chunked : framing
                    }
                    writeField(name, fieldText: value, into: &buffer)
                }
            }
        }
        buffer.writeStaticString("\r\n")
        return framing
    }

    /// A field line whose value is a String made by FieldText (a client's, or the gateway's own).
    static func writeField(_ name: String, fieldText value: String, into buffer: inout ByteBuffer) {
        name.withUTF8Bytes { name in
            value.withUTF8Bytes { value in writeField(name, fieldText: value, into: &buffer) }
        }
    }

    /// - Parameter value: the UTF-8 of a String made by FieldText.
    static func writeField(_ name: UnsafeRawBufferPointer, fieldText value: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        write(into: &buffer, atMost: name.count + value.count + 4) { line in line.appendField(name, fieldText: value) }
    }

    /// A field line from bytes, copied as they are.
    static func writeField(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        write(into: &buffer, atMost: name.count + value.count + 4) { line in line.appendField(name, value) }
    }

    /// Writes what `fill` appends, at most `count` bytes, into the buffer's room at once (one
    /// capacity check for a whole line instead of one per piece).
    @inline(__always)
    static func write(into buffer: inout ByteBuffer, atMost count: Int, _ fill: (inout OutputCursor) -> Void) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { out in
            var cursor = OutputCursor(out)
            fill(&cursor)
            return cursor.written
        }
    }

    static func writeChunkSize(_ size: Int, into buffer: inout ByteBuffer) {
        buffer.writeString(String(size, radix: 16))
        buffer.writeStaticString("\r\n")
    }

    /// The last chunk and the trailer section, without the fields that frame or route a message.
    static func writeLastChunk(trailers: HTTPHeaders?, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("0\r\n")
        var kept = HTTPHeaders()
        for (name, value) in trailers ?? [:] where !ForwardedHeaders.isFramingOrRouting(name) {
            kept.add(name: name, value: value)
        }
        writeFields(kept, into: &buffer)
    }

    /// Writes `body` as one chunk, in one buffer when it is small (one write instead of three);
    /// an empty body writes nothing (an empty chunk would read as the last one).
    static func writeChunk(_ body: ByteBuffer, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard body.readableBytes > 0 else {
            promise?.succeed(())
            return
        }
        var prefix = context.channel.allocator.buffer(capacity: 24 + min(body.readableBytes, 4096))
        writeChunkSize(body.readableBytes, into: &prefix)
        if body.readableBytes <= 4096 {
            var body = body
            prefix.writeBuffer(&body)
            prefix.writeStaticString("\r\n")
            context.write(NIOAny(prefix), promise: promise)
        } else {
            context.write(NIOAny(prefix), promise: nil)
            context.write(NIOAny(body), promise: nil)
            context.write(NIOAny(ByteBuffer(staticString: "\r\n")), promise: promise)
        }
    }

    /// Writes a message's end: the last chunk and the trailers when the body is chunked, else
    /// nothing, the promise completing once what was written before it is.
    static func writeEnd(trailers: HTTPHeaders?, chunked: Bool, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if chunked {
            var buffer = context.channel.allocator.buffer(capacity: 8)
            writeLastChunk(trailers: trailers, into: &buffer)
            context.write(NIOAny(buffer), promise: promise)
        } else if let promise {
            context.write(NIOAny(ByteBuffer()), promise: promise)
        }
    }

}

/// Appends bytes to memory reserved beforehand (the caller reserves enough for all of them).
struct OutputCursor {
    let out: UnsafeMutableRawBufferPointer
    private(set) var written = 0

    init(_ out: UnsafeMutableRawBufferPointer) {
        self.out = out
    }

    /// Counts bytes written into `out` at `written` by a writer that checked the room itself.
    @inline(__always)
    mutating func advance(by count: Int) {
        precondition(written + count <= out.count, "a write outgrew the room reserved for it")
        written += count
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        // The room is the caller's reckoning; a wrong one must stop here, not write past it.
        precondition(written + bytes.count <= out.count, "a write outgrew the room reserved for it")
        guard bytes.count > 0 else { return }
        // Through the base addresses: a slice of the room was copied through generic code.
        (out.baseAddress! + written).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        written += bytes.count
    }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// `HTTP/1.x code reason` and CRLF: at most the reason's length and 15 bytes.
    @inline(__always)
    mutating func appendStatusLine(version: HTTPVersion, status: HTTPResponseStatus, reason: String) {
        append(version == .http1_0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        appendThreeDigits(Int(status.code))
        append(UInt8(ascii: " "))
        reason.withUTF8Bytes { append($0) }
        append("\r\n")
    }

    /// The last three decimal digits of a non-negative value, zero-padded (a status code, the
    /// milliseconds of a time).
    @inline(__always)
    mutating func appendThreeDigits(_ value: Int) {
        append(UInt8(ascii: "0") + UInt8(value / 100 % 10))
        append(UInt8(ascii: "0") + UInt8(value / 10 % 10))
        append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    /// `name: value` and CRLF.
    @inline(__always)
    mutating func appendField(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        append(name)
        append(": ")
        append(value)
        append("\r\n")
    }

    /// `name: value` and CRLF, the value written as the bytes received (see FieldText).
    @inline(__always)
    mutating func appendField(_ name: UnsafeRawBufferPointer, fieldText value: UnsafeRawBufferPointer) {
        append(name)
        append(": ")
        FieldText.write(value, into: &self)
        append("\r\n")
    }

    /// A field from Strings, as their UTF-8 (for the gateway's own values, not FieldText's).
    @inline(__always)
    mutating func appendField(_ name: String, _ value: String) {
        name.withUTF8Bytes { name in
            value.withUTF8Bytes { value in appendField(name, value) }
        }
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        precondition(written < out.count, "a write outgrew the room reserved for it")
        out[written] = byte
        written += 1
    }
}
