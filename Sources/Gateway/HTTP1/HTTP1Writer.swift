import NIOCore
import NIOHTTP1

/// Serialises the heads and the chunked framing the gateway writes on HTTP/1.1 connections, both
/// to clients and to upstreams. The framing headers are the caller's decision; these only write.
enum HTTP1Writer {
    static func writeRequestHead(_ head: HTTPRequestHead, into buffer: inout ByteBuffer) {
        buffer.writeString(head.method.rawValue)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.uri)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        writeFields(head.headers, into: &buffer)
    }

    static func writeResponseHead(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(head.version == .http1_0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        let code = head.status.code
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code / 100 % 10))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code / 10 % 10))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code % 10))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        writeFields(head.headers, into: &buffer)
    }

    /// Fields, then the empty line.
    static func writeFields(_ headers: HTTPHeaders, into buffer: inout ByteBuffer) {
        for (name, value) in headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            FieldText.write(value, into: &buffer)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
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

    /// Whether a head says its body is chunked (the writers' only question about framing).
    static func isChunked(_ headers: HTTPHeaders) -> Bool {
        headers.contains { $0.name.asciiCaseInsensitiveEquals("transfer-encoding") && $0.value.asciiCaseInsensitiveEquals("chunked") }
    }
}
