import NIOCore
import NIOHTTP1

extension ForwardedHeaders {
    /// The response head an HTTP/1.1 client sees, written from the head an HTTP/1.1 upstream
    /// sent as received: the fields, framing and announcement `clientResponse` decides, each
    /// forwarded field's bytes copied as they arrived instead of built into Strings and back.
    /// - Returns: whether the gateway chunks the body for the client.
    static func writeClientResponse(
        from head: ReceivedResponseHead,
        options: ConnectionOptions,
        requestVersion: HTTPVersion,
        requestMethod: HTTPMethod,
        keepAlive: Bool,
        rateLimitHeaders: [(String, String)],
        into buffer: inout ByteBuffer
    ) -> Bool {
        let announcement = connectionAnnouncement(requestVersion: requestVersion, close: !keepAlive)
        HTTP1Writer.writeStatusLine(version: announcement.version, status: head.status, into: &buffer)
        var hasLength = false
        head.forEachField { name, value in
            guard forwardsToClient(name, options: options, rateLimitHeaders: rateLimitHeaders) else { return }
            if name.count == 14 && ASCIIText.equals(name, lowercased: "content-length") { hasLength = true }
            HTTP1Writer.writeField(name, value, into: &buffer)
        }
        for (name, value) in rateLimitHeaders {
            HTTP1Writer.writeField(name, value, into: &buffer)
        }
        let chunked = chunksForClient(requestVersion: requestVersion, requestMethod: requestMethod, status: head.status, upstreamHasLength: hasLength)
        if chunked {
            HTTP1Writer.writeField("transfer-encoding", "chunked", into: &buffer)
        }
        if let connection = announcement.connection {
            HTTP1Writer.writeField("connection", connection, into: &buffer)
        }
        buffer.writeStaticString("\r\n")
        return chunked
    }

    /// An HTTP/1.0 client can only learn where a body without a length ends by the connection
    /// closing.
    static func needsCloseDelimiting(_ head: ReceivedResponseHead, requestVersion: HTTPVersion, method: HTTPMethod) -> Bool {
        guard requestVersion == .http1_0, method != .HEAD, head.status.mayHaveResponseBody else { return false }
        var hasLength = false
        head.forEachField { name, _ in
            if name.count == 14 && ASCIIText.equals(name, lowercased: "content-length") { hasLength = true }
        }
        return !hasLength
    }
}
