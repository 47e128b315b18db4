import NIOHTTP1

/// Header rewriting between the two hops.
enum ForwardedHeaders {
    /// Headers that describe one connection, not the message (RFC 9110 section 7.6.1), plus
    /// every header the `Connection` header names.
    static let hopByHop: [String] = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// One scan in the common case (no hop-by-hop header present); removals only when needed.
    static func removeHopByHop(_ headers: inout HTTPHeaders) {
        guard headers.contains(where: { isHopByHop($0.name) }) else { return }
        for value in headers[canonicalForm: "connection"] {
            let name = value.lowercased()
            if name != "close" && name != "keep-alive" { headers.remove(name: String(name)) }
        }
        for name in hopByHop { headers.remove(name: name) }
    }

    private static func isHopByHop(_ name: String) -> Bool {
        // Cheap length filter first: every hop-by-hop name is 2 to 19 bytes long.
        let length = name.utf8.count
        guard length >= 2 && length <= 19 else { return false }
        return hopByHop.contains { name.asciiCaseInsensitiveEquals($0) }
    }

    /// Names of rate-limit headers an upstream may send itself (`X-RateLimit-*`, `RateLimit*`).
    static func isRateLimitHeader(_ name: String) -> Bool {
        name.asciiCaseInsensitiveHasPrefix("x-ratelimit") || name.asciiCaseInsensitiveHasPrefix("ratelimit")
    }

    /// The request the upstream sees: hop-by-hop headers gone, the `X-Forwarded-*` trio set,
    /// `Host` kept as the client sent it, the body framed as it arrived.
    /// - Parameter host: the request's `Host`, which the caller has already looked up.
    static func upstreamRequest(
        from head: HTTPRequestHead,
        host: String?,
        uri: String,
        peerAddress: String,
        scheme: String,
        upstream: GatewayConfig.Upstream
    ) -> HTTPRequestHead {
        var headers = head.headers
        let chunkedBody = !headers.contains(name: "content-length")
            && headers[canonicalForm: "transfer-encoding"].last?.lowercased() == "chunked"
        removeHopByHop(&headers)
        if chunkedBody { headers.add(name: "transfer-encoding", value: "chunked") }
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
        if let host {
            headers.add(name: "x-forwarded-host", value: host)
        } else {
            headers.add(name: "host", value: upstream.authority)
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: upstream.basePath + uri, headers: headers)
    }

    /// The response the client sees: hop-by-hop headers gone (NIO frames the body again), the
    /// rate-limit headers added, and the connection's fate announced.
    static func clientResponse(
        from head: HTTPResponseHead,
        requestVersion: HTTPVersion,
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
