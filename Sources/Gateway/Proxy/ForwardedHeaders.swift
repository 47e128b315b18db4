import NIOHTTP1

/// Header rewriting between the two hops.
enum ForwardedHeaders {
    /// Headers that describe one connection, not the message (RFC 9110 section 7.6.1), plus
    /// every header the `Connection` header names.
    static let hopByHop: [String] = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Fields a `Connection` header can never remove: they frame or route the message, and the
    /// gateway decides them itself.
    private static let protectedFromConnection: [String] = ["content-length", "transfer-encoding", "host"]

    /// One scan in the common case (no hop-by-hop header present); removals only when needed.
    static func removeHopByHop(_ headers: inout HTTPHeaders) {
        guard headers.contains(where: { isHopByHop($0.name) }) else { return }
        for value in headers[canonicalForm: "connection"] {
            let name = value.lowercased()
            if name != "close" && name != "keep-alive" && !protectedFromConnection.contains(name) {
                headers.remove(name: String(name))
            }
        }
        for name in hopByHop { headers.remove(name: name) }
    }

    private static func isHopByHop(_ name: String) -> Bool {
        // Cheap length filter first: every hop-by-hop name is 2 to 19 bytes long.
        let length = name.utf8.count
        guard length >= 2 && length <= 19 else { return false }
        return hopByHop.contains { name.asciiCaseInsensitiveEquals($0) }
    }

    /// Fields a trailer section may not carry onward: framing, routing and hop-by-hop fields.
    static func isFramingOrRouting(_ name: String) -> Bool {
        isHopByHop(name) || protectedFromConnection.contains { name.asciiCaseInsensitiveEquals($0) }
    }

    /// Names of rate-limit headers an upstream may send itself (`X-RateLimit-*`, `RateLimit*`).
    static func isRateLimitHeader(_ name: String) -> Bool {
        name.asciiCaseInsensitiveHasPrefix("x-ratelimit") || name.asciiCaseInsensitiveHasPrefix("ratelimit")
    }

    /// The request the upstream sees: hop-by-hop headers gone, the body framed as the gateway
    /// decided (`framing`: one `Content-Length`, or `Transfer-Encoding: chunked`, or neither),
    /// `Host` set to the authority the request was routed by, and the `X-Forwarded-*` trio set.
    /// - Parameter authority: the request's authority (absolute-form target, else `Host`).
    static func upstreamRequest(
        from head: HTTPRequestHead,
        authority: String?,
        framing: RequestBodyFraming,
        uri: String,
        peerAddress: String,
        scheme: String,
        upstream: GatewayConfig.Upstream
    ) -> HTTPRequestHead {
        var headers = head.headers
        removeHopByHop(&headers)
        headers.remove(name: "content-length")
        headers.remove(name: "transfer-encoding")
        switch framing {
        case .none: break
        case .length(let length): headers.add(name: "content-length", value: String(length))
        case .chunked: headers.add(name: "transfer-encoding", value: "chunked")
        }
        // The gateway answers `Expect: 100-continue` itself, once the limiter has admitted.
        headers.remove(name: "expect")

        if headers.contains(name: "x-forwarded-for") {
            let prior = head.headers["x-forwarded-for"].joined(separator: ", ")
            headers.replaceOrAdd(name: "x-forwarded-for", value: "\(prior), \(peerAddress)")
        } else {
            headers.add(name: "x-forwarded-for", value: peerAddress)
        }
        // What the client claims about the original scheme and host is replaced, never trusted.
        if headers.contains(name: "x-forwarded-proto") { headers.remove(name: "x-forwarded-proto") }
        headers.add(name: "x-forwarded-proto", value: scheme)
        if headers.contains(name: "x-forwarded-host") { headers.remove(name: "x-forwarded-host") }
        if let authority {
            if headers.first(name: "host") != authority { headers.replaceOrAdd(name: "host", value: authority) }
            headers.add(name: "x-forwarded-host", value: authority)
        } else {
            headers.replaceOrAdd(name: "host", value: upstream.authority)
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: upstream.basePath + uri, headers: headers)
    }

    /// The response the client sees: hop-by-hop headers gone, the rate-limit headers added, the
    /// body framed for the client's hop (the upstream's length kept, else chunked for HTTP/1.1;
    /// an HTTP/1.0 client's body ends with the connection), and the connection's fate announced.
    static func clientResponse(
        from head: HTTPResponseHead,
        requestVersion: HTTPVersion,
        requestMethod: HTTPMethod,
        keepAlive: Bool,
        rateLimitHeaders: [(String, String)]
    ) -> HTTPResponseHead {
        var headers = head.headers
        removeHopByHop(&headers)
        if !rateLimitHeaders.isEmpty {
            // An upstream's own rate-limit headers would contradict the gateway's: ours win.
            if headers.contains(where: { isRateLimitHeader($0.name) }) {
                for (name, _) in rateLimitHeaders { headers.remove(name: name) }
            }
            for (name, value) in rateLimitHeaders { headers.add(name: name, value: value) }
        }
        if requestVersion == .http1_1, requestMethod != .HEAD, head.status.mayHaveResponseBody,
            !headers.contains(name: "content-length")
        {
            headers.add(name: "transfer-encoding", value: "chunked")
        }
        let version = announceConnection(in: &headers, requestVersion: requestVersion, close: !keepAlive)
        return HTTPResponseHead(version: version, status: head.status, headers: headers)
    }

    /// Says what happens to the client connection after an answer, and picks the answer's version:
    /// an HTTP/1.0 client gets HTTP/1.0 and must be told `keep-alive` explicitly. An HTTP/2
    /// stream has no connection of its own to announce (and HTTP/2 forbids the header).
    static func announceConnection(in headers: inout HTTPHeaders, requestVersion: HTTPVersion, close: Bool) -> HTTPVersion {
        let version: HTTPVersion = requestVersion == .http1_0 ? .http1_0 : .http1_1
        if requestVersion.major == 2 { return version }
        if close {
            headers.add(name: "connection", value: "close")
        } else if version == .http1_0 {
            headers.add(name: "connection", value: "keep-alive")
        }
        return version
    }

    /// An HTTP/1.0 client can only learn where a body without a length ends by the connection
    /// closing.
    static func needsCloseDelimiting(_ head: HTTPResponseHead, requestVersion: HTTPVersion, method: HTTPMethod) -> Bool {
        requestVersion == .http1_0 && method != .HEAD && !head.headers.contains(name: "content-length")
            && head.status.mayHaveResponseBody
    }
}

extension HTTPResponseStatus {
    var mayHaveResponseBody: Bool {
        !(code < 200 || code == 204 || code == 304)
    }
}

extension String {
    /// ASCII case-insensitive equality with an all-lower-case `other`, without allocating.
    func asciiCaseInsensitiveEquals(_ other: String) -> Bool {
        utf8.count == other.utf8.count && asciiCaseInsensitiveHasPrefix(other)
    }

    /// ASCII case-insensitive prefix test against an all-lower-case `prefix`, without allocating.
    func asciiCaseInsensitiveHasPrefix(_ prefix: String) -> Bool {
        var mine = utf8.makeIterator()
        for expected in prefix.utf8 {
            guard let byte = mine.next() else { return false }
            let lowered = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
            if lowered != expected { return false }
        }
        return true
    }
}
