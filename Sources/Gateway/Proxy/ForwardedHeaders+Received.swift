import HTTP2Server
import HTTPFieldText
import NIOCore
import NIOHTTP1
import RateSync

extension ForwardedHeaders {
    /// The response head an HTTP/1.1 client sees, written from the head an HTTP/1.1 upstream
    /// sent as received: the fields, framing and announcement `clientResponse` decides, each
    /// forwarded field's bytes copied as they arrived instead of built into Strings and back.
    /// The gateway's own rate-limit values are written as their UTF-8 (FieldText's escapes
    /// belong to values received, which these are not).
    /// - Returns: whether the gateway chunks the body for the client.
    static func writeClientResponse(
        from head: ReceivedResponseHead,
        options: ConnectionOptions,
        requestVersion: HTTPVersion,
        requestMethod: HTTPMethod,
        keepAlive: Bool,
        rateLimitHeaders: RateLimitHeaders?,
        into buffer: inout ByteBuffer
    ) -> Bool {
        let announcement = connectionAnnouncement(requestVersion: requestVersion, close: !keepAlive)
        let reason = head.status.reasonPhrase
        // Room for all of it at once: the status line, the upstream's fields (each at most one
        // byte longer than received, its colon's space added), ours, the framing and the close.
        var room = reason.utf8.count + 15 + head.bytes.readableBytes + head.fields.count + 64
        if let rateLimitHeaders {
            room += rateLimitHeaders.maximumByteCount + 6 * 4
        }
        var chunked = false
        HTTP1Writer.write(into: &buffer, atMost: room) { out in
            out.appendStatusLine(version: announcement.version, status: head.status, reason: reason)
            head.forEachField { name, value in
                guard forwardsToClient(name, status: head.status, options: options, rateLimitHeaders: rateLimitHeaders) else { return }
                out.appendField(name, value)
            }
            if let rateLimitHeaders {
                out.advance(by: rateLimitHeaders.writeFieldLines(into: out.out, at: out.written))
            }
            // `Connection` never removes `Content-Length`: the upstream's is forwarded when it sent one.
            chunked = chunksForClient(
                requestVersion: requestVersion, requestMethod: requestMethod, status: head.status, upstreamHasLength: head.framing.hasLength
            )
            if chunked {
                out.append("transfer-encoding: chunked\r\n")
            }
            if let connection = announcement.connection {
                out.appendField("connection", connection)
            }
            out.append("\r\n")
        }
        return chunked
    }

    /// The response head an HTTP/2 client sees, as the header block of HTTP2ResponseFields,
    /// from the head an HTTP/1.1 upstream sent: the fields `clientResponse` keeps, as received,
    /// then the gateway's rate-limit headers (a stream frames its body itself: no framing field,
    /// no announcement).
    static func encodeClientResponse(
        from head: ReceivedResponseHead,
        options: ConnectionOptions,
        rateLimitHeaders: RateLimitHeaders?,
        into block: inout ByteBuffer
    ) {
        HTTP2ResponseFields.encodeStatus(head.status, into: &block)
        head.forEachField { name, value in
            guard forwardsToClient(name, status: head.status, options: options, rateLimitHeaders: rateLimitHeaders) else { return }
            HTTP2ResponseFields.encodeField(name: name, value: value, into: &block)
        }
        rateLimitHeaders?.forEachField { name, value in HTTP2ResponseFields.encodeField(name: name, value: value, into: &block) }
    }

    /// An HTTP/1.0 client can only learn where a body without a length ends by the connection
    /// closing.
    static func needsCloseDelimiting(_ head: ReceivedResponseHead, requestVersion: HTTPVersion, method: HTTPMethod) -> Bool {
        requestVersion == .http1_0 && !method.isHEAD && head.status.mayHaveResponseBody && !head.framing.hasLength
    }
}
