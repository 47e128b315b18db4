import NIOCore
import NIOHTTP1
import RateSync

/// An answer the gateway makes itself: status, JSON body, extra headers, and the body's message
/// (what a gRPC client is told instead of the body).
struct LocalResponse {
    let status: HTTPResponseStatus
    let headers: [(String, String)]
    let message: String
    let body: String

    init(status: HTTPResponseStatus, headers: [(String, String)], message: String, body: String) {
        self.status = status
        self.headers = headers
        self.message = message
        self.body = body
    }

    /// An answer whose body is a type and a message, nothing more.
    init(status: HTTPResponseStatus, headers: [(String, String)], type: String, message: String) {
        self.init(status: status, headers: headers, message: message, body: ErrorBody.simple(type: type, message: message))
    }

    static func notFound() -> LocalResponse {
        LocalResponse(
            status: .notFound,
            headers: [],
            type: "route_not_found", message: "No route matches this request."
        )
    }

    static func badRequest(_ message: String) -> LocalResponse {
        LocalResponse(status: .badRequest, headers: [], type: "bad_request", message: message)
    }

    /// A route keyed on a token, with `on_missing = "reject"`, and no token that verifies.
    static func unauthorized() -> LocalResponse {
        LocalResponse(
            status: .unauthorized,
            headers: [("WWW-Authenticate", "Bearer")],
            type: "unauthorized", message: "A valid bearer token is required."
        )
    }

    static func rateLimited(limiter: LimiterConfig, decision: Decision) -> LocalResponse {
        let retryAfter = RateLimitHeaders.retryAfterSeconds(decision)
        let body = ErrorBody.rateLimited(limiterID: limiter.id, limit: decision.limit, retryAfterSeconds: retryAfter)
        return LocalResponse(
            status: .tooManyRequests,
            headers: RateLimitHeaders(decision, limiter: limiter).pairs,
            message: ErrorBody.rateLimitedMessage(retryAfterSeconds: retryAfter),
            body: body
        )
    }

    static func limiterUnavailable(limiter: LimiterConfig, retryAfterSeconds: Int) -> LocalResponse {
        LocalResponse(
            status: .serviceUnavailable,
            headers: [("Retry-After", String(retryAfterSeconds))],
            message: ErrorBody.limiterUnavailableMessage(retryAfterSeconds: retryAfterSeconds),
            body: ErrorBody.limiterUnavailable(limiterID: limiter.id, retryAfterSeconds: retryAfterSeconds)
        )
    }

    static func badGateway() -> LocalResponse {
        LocalResponse(
            status: .badGateway,
            headers: [],
            type: "upstream_unavailable", message: "The upstream service could not be reached."
        )
    }

    /// Every connection `max_connections` allows to the upstream stayed busy for the connect
    /// timeout.
    static func upstreamBusy() -> LocalResponse {
        LocalResponse(
            status: .serviceUnavailable,
            headers: [],
            type: "upstream_unavailable", message: "The upstream service has no free connection."
        )
    }

    static func gatewayTimeout() -> LocalResponse {
        LocalResponse(
            status: .gatewayTimeout,
            headers: [],
            type: "upstream_timeout", message: "The upstream service did not answer in time."
        )
    }

    static func headersTooLarge() -> LocalResponse {
        LocalResponse(
            status: .requestHeaderFieldsTooLarge,
            headers: [],
            type: "headers_too_large", message: "The request headers are too large."
        )
    }

    static func methodNotAllowed(_ method: HTTPMethod) -> LocalResponse {
        LocalResponse(
            status: .methodNotAllowed,
            headers: [],
            type: "method_not_allowed", message: "\(method.rawValue) is not proxied."
        )
    }

    /// An HTTP/2 WebSocket (extended CONNECT) to a route whose upstream takes no tunnel.
    static func tunnelNotAvailable() -> LocalResponse {
        LocalResponse(
            status: .notImplemented,
            headers: [],
            type: "websocket_not_available", message: "WebSocket is not tunnelled to this route's upstream."
        )
    }

    /// The answer to a request the HTTP/1.1 parser could not read.
    static func unreadable(_ error: HTTP1RequestError) -> LocalResponse {
        switch error {
        case .headTooLarge:
            return .headersTooLarge()
        case .malformed(let reason):
            return .badRequest("The request is not valid HTTP/1.1: \(reason).")
        case .unsupportedTransferCoding:
            return LocalResponse(
                status: .notImplemented,
                headers: [],
                type: "unsupported_transfer_encoding", message: "Only the transfer coding chunked, alone, is supported."
            )
        case .unsupportedVersion:
            return LocalResponse(
                status: .httpVersionNotSupported,
                headers: [],
                type: "http_version_not_supported", message: "Only HTTP/1.x is served here."
            )
        }
    }

    func head(version: HTTPVersion, close: Bool) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(self.headers.count + 3)
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.utf8.count))
        for (name, value) in self.headers { headers.add(name: name, value: value) }
        let responseVersion = ForwardedHeaders.announceConnection(in: &headers, requestVersion: version, close: close)
        return HTTPResponseHead(version: responseVersion, status: status, headers: headers)
    }
}
