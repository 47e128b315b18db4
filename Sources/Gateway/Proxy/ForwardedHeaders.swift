import NIOHTTP1
import RateSync

/// Header rewriting between the two hops.
enum ForwardedHeaders {
    /// Whether a field name (or a `Connection` option naming one) is one a `Connection` header
    /// can never remove: `Content-Length`, `Transfer-Encoding` and `Host` frame or route the
    /// message, and the gateway decides them itself.
    static func isProtectedFromConnection(_ option: UnsafeRawBufferPointer) -> Bool {
        ASCIIText.equals(option, lowercased: "content-length") || ASCIIText.equals(option, lowercased: "transfer-encoding")
            || ASCIIText.equals(option, lowercased: "host")
    }

    /// Whether a field describes one connection, not the message (RFC 9110, 7.6.1): connection,
    /// keep-alive, proxy-connection, te, trailer, transfer-encoding, upgrade, proxy-authenticate,
    /// proxy-authorization. Compared only with the names of its length: most fields are ruled out
    /// by their length alone.
    static func isHopByHop(_ name: String) -> Bool {
        name.withUTF8Bytes(isHopByHop)
    }

    static func isHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 2: return ASCIIText.equals(name, lowercased: "te")
        case 7: return ASCIIText.equals(name, lowercased: "trailer") || ASCIIText.equals(name, lowercased: "upgrade")
        case 10: return ASCIIText.equals(name, lowercased: "connection") || ASCIIText.equals(name, lowercased: "keep-alive")
        case 16: return ASCIIText.equals(name, lowercased: "proxy-connection")
        case 17: return ASCIIText.equals(name, lowercased: "transfer-encoding")
        case 18: return ASCIIText.equals(name, lowercased: "proxy-authenticate")
        case 19: return ASCIIText.equals(name, lowercased: "proxy-authorization")
        default: return false
        }
    }

    /// Fields a trailer section may not carry onward: framing, routing and hop-by-hop fields.
    static func isFramingOrRouting(_ name: String) -> Bool {
        isHopByHop(name) || name.withUTF8Bytes(isProtectedFromConnection)
    }

    /// A response's trailer section as the client gets it, without the fields a trailer may not
    /// carry onward. HTTP1Writer leaves them out of a last chunk too; this also keeps them from
    /// an HTTP/2 client, whose trailers are a header block of their own (where a `content-length`
    /// contradicts the body already sent).
    static func trailersForClient(_ trailers: HTTPHeaders) -> HTTPHeaders {
        guard trailers.contains(where: { isFramingOrRouting($0.name) }) else { return trailers }
        return HTTPHeaders(trailers.filter { !isFramingOrRouting($0.name) })
    }

    /// Names of rate-limit headers an upstream may send itself (`X-RateLimit-*`, `RateLimit*`).
    static func isRateLimitHeader(_ name: String) -> Bool {
        name.withUTF8Bytes(isRateLimitHeader)
    }

    static func isRateLimitHeader(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.first.map(ASCIIText.lowered) {
        case UInt8(ascii: "x"): return ASCIIText.hasPrefix(name, lowercased: "x-ratelimit")
        case UInt8(ascii: "r"): return ASCIIText.hasPrefix(name, lowercased: "ratelimit")
        default: return false
        }
    }

    /// Whether an upstream's response field goes on to the client: not when it belongs to the
    /// upstream's connection, nor when it is a rate-limit header the gateway sends itself (an
    /// upstream's own would contradict ours: ours win), nor a 204's `Content-Length` (RFC 9110,
    /// 8.6: never sent with one; an HTTP/2 client such as curl's nghttp2 resets a 204 stream
    /// whose length is not 0, and nginx drops it too).
    static func forwardsToClient(
        _ name: UnsafeRawBufferPointer, status: HTTPResponseStatus, options: ConnectionOptions, rateLimitHeaders: RateLimitHeaders?
    ) -> Bool {
        if options.removes(name) { return false }
        if status.code == 204 && name.count == 14 && ASCIIText.equals(name, lowercased: "content-length") { return false }
        guard rateLimitHeaders != nil, isRateLimitHeader(name) else { return true }
        return !RateLimitHeaders.admissionNames.contains { ours in
            ours.withUTF8Buffer { ASCIIText.equalsIgnoringCase(name, UnsafeRawBufferPointer($0)) }
        }
    }

    /// Whether the gateway chunks a response body for the client: an HTTP/1.1 client, a body,
    /// and no length from the upstream (an HTTP/1.0 client's body ends with the connection).
    static func chunksForClient(requestVersion: HTTPVersion, requestMethod: HTTPMethod, status: HTTPResponseStatus, upstreamHasLength: Bool) -> Bool {
        requestVersion == .http1_1 && !requestMethod.isHEAD && status.mayHaveResponseBody && !upstreamHasLength
    }

    /// The response the client sees, built in one pass over the upstream's fields: hop-by-hop
    /// fields gone, the rate-limit headers added (an upstream's own would contradict ours: ours
    /// win), the body framed for the client's hop (the upstream's length kept, else chunked for
    /// HTTP/1.1; an HTTP/1.0 client's body ends with the connection), and the connection's fate
    /// announced.
    static func clientResponse(
        from head: HTTPResponseHead,
        options: ConnectionOptions,
        requestVersion: HTTPVersion,
        requestMethod: HTTPMethod,
        keepAlive: Bool,
        rateLimitHeaders: RateLimitHeaders?
    ) -> HTTPResponseHead {
        let ours = rateLimitHeaders?.pairs ?? []
        var fields: [(String, String)] = []
        fields.reserveCapacity(head.headers.count + ours.count + 2)
        var hasLength = false
        for (name, value) in head.headers where name.withUTF8Bytes({ forwardsToClient($0, status: head.status, options: options, rateLimitHeaders: rateLimitHeaders) }) {
            if name.utf8.count == 14 && name.asciiCaseInsensitiveEquals("content-length") { hasLength = true }
            fields.append((name, value))
        }
        fields.append(contentsOf: ours)
        if chunksForClient(requestVersion: requestVersion, requestMethod: requestMethod, status: head.status, upstreamHasLength: hasLength) {
            fields.append(("transfer-encoding", "chunked"))
        }
        var headers = HTTPHeaders(fields)
        let version = announceConnection(in: &headers, requestVersion: requestVersion, close: !keepAlive)
        return HTTPResponseHead(version: version, status: head.status, headers: headers)
    }

    /// An upstream's 101 to a WebSocket handshake, as the client sees it: its fields (the
    /// `Sec-WebSocket-*` answers among them) without hop-by-hop ones, the rate-limit headers,
    /// and the gateway's own `Upgrade` and `Connection`. No framing: the bytes that follow are
    /// the tunnel's.
    ///
    /// Over HTTP/2 (RFC 8441) it is a 200 instead, and `Sec-WebSocket-Accept` answers a key the
    /// gateway made, not the client: it is dropped.
    static func tunnelResponse(from head: HTTPResponseHead, rateLimitHeaders: RateLimitHeaders?, overHTTP2: Bool) -> HTTPResponseHead {
        let options = ConnectionOptions(head.headers)
        let ours = rateLimitHeaders?.pairs ?? []
        var fields: [(String, String)] = []
        fields.reserveCapacity(head.headers.count + ours.count + 2)
        for (name, value) in head.headers where !options.removes(name) && !isRateLimitHeader(name) {
            if name.asciiCaseInsensitiveEquals("content-length") { continue }
            if overHTTP2 && name.asciiCaseInsensitiveEquals("sec-websocket-accept") { continue }
            fields.append((name, value))
        }
        fields.append(contentsOf: ours)
        if overHTTP2 {
            return HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders(fields))
        }
        fields.append(("connection", "upgrade"))
        fields.append(("upgrade", WebSocketUpgrade.protocolName))
        return HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: HTTPHeaders(fields))
    }

    /// Says what happens to the client connection after an answer, and picks the answer's version:
    /// an HTTP/1.0 client gets HTTP/1.0 and must be told `keep-alive` explicitly. An HTTP/2
    /// stream has no connection of its own to announce (and HTTP/2 forbids the header).
    static func announceConnection(in headers: inout HTTPHeaders, requestVersion: HTTPVersion, close: Bool) -> HTTPVersion {
        let announcement = connectionAnnouncement(requestVersion: requestVersion, close: close)
        if let connection = announcement.connection { headers.add(name: "connection", value: connection) }
        return announcement.version
    }

    /// The answer's version, and the `Connection` value it carries, if any.
    static func connectionAnnouncement(requestVersion: HTTPVersion, close: Bool) -> (version: HTTPVersion, connection: String?) {
        let version: HTTPVersion = requestVersion == .http1_0 ? .http1_0 : .http1_1
        if requestVersion.major == 2 { return (version, nil) }
        if close { return (version, "close") }
        return (version, version == .http1_0 ? "keep-alive" : nil)
    }

    /// An HTTP/1.0 client can only learn where a body without a length ends by the connection
    /// closing.
    static func needsCloseDelimiting(_ head: HTTPResponseHead, requestVersion: HTTPVersion, method: HTTPMethod) -> Bool {
        requestVersion == .http1_0 && !method.isHEAD && !head.headers.contains(name: "content-length")
            && head.status.mayHaveResponseBody
    }
}

extension HTTPResponseStatus {
    var mayHaveResponseBody: Bool {
        !(code < 200 || code == 204 || code == 304)
    }
}
