import NIOHTTP1

/// Header rewriting between the two hops.
enum ForwardedHeaders {
    /// Headers that describe one connection, not the message (RFC 9110 section 7.6.1), plus
    /// every header the `Connection` header names.
    static let hopByHop: [String] = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    static func removeHopByHop(_ headers: inout HTTPHeaders) {
        for value in headers[canonicalForm: "connection"] {
            let name = value.lowercased()
            if name != "close" && name != "keep-alive" { headers.remove(name: String(name)) }
        }
        for name in hopByHop { headers.remove(name: name) }
    }

    /// The request the upstream sees: hop-by-hop headers gone, the `X-Forwarded-*` trio set,
    /// `Host` kept as the client sent it, the body framed as it arrived.
    static func upstreamRequest(
        from head: HTTPRequestHead,
        uri: String,
        peerAddress: String,
        upstream: GatewayConfig.Upstream
    ) -> HTTPRequestHead {
        var headers = head.headers
        let chunkedBody = !headers.contains(name: "content-length")
            && headers[canonicalForm: "transfer-encoding"].last?.lowercased() == "chunked"
        removeHopByHop(&headers)
        if chunkedBody { headers.add(name: "transfer-encoding", value: "chunked") }
        // The gateway answers `Expect: 100-continue` itself, once the limiter has admitted.
        headers.remove(name: "expect")

        let priorForwardedFor = head.headers["x-forwarded-for"].joined(separator: ", ")
        headers.replaceOrAdd(
            name: "x-forwarded-for",
            value: priorForwardedFor.isEmpty ? peerAddress : "\(priorForwardedFor), \(peerAddress)"
        )
        headers.replaceOrAdd(name: "x-forwarded-proto", value: "http")
        if let host = head.headers.first(name: "host") {
            headers.replaceOrAdd(name: "x-forwarded-host", value: host)
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
        for (name, value) in rateLimitHeaders { headers.replaceOrAdd(name: name, value: value) }
        let version: HTTPVersion = requestVersion.minor == 0 ? .http1_0 : .http1_1
        if !keepAlive {
            headers.add(name: "connection", value: "close")
        } else if version == .http1_0 {
            headers.add(name: "connection", value: "keep-alive")
        }
        return HTTPResponseHead(version: version, status: head.status, headers: headers)
    }

    /// An HTTP/1.0 client can only learn where a body without a length ends by the connection
    /// closing.
    static func needsCloseDelimiting(_ head: HTTPResponseHead, requestVersion: HTTPVersion, method: HTTPMethod) -> Bool {
        requestVersion.minor == 0 && method != .HEAD && !head.headers.contains(name: "content-length")
            && head.status.mayHaveResponseBody
    }
}

extension HTTPResponseStatus {
    var mayHaveResponseBody: Bool {
        !(code < 200 || code == 204 || code == 304)
    }
}
