import NIOCore
import NIOHTTP1
import RateSync

/// An answer the gateway makes itself: status, JSON body, extra headers.
struct LocalResponse {
    let status: HTTPResponseStatus
    let headers: [(String, String)]
    let body: String

    static func notFound() -> LocalResponse {
        LocalResponse(
            status: .notFound,
            headers: [],
            body: ErrorBody.simple(type: "route_not_found", message: "No route matches this request.")
        )
    }

    static func badRequest(_ message: String) -> LocalResponse {
        LocalResponse(status: .badRequest, headers: [], body: ErrorBody.simple(type: "bad_request", message: message))
    }

    static func rateLimited(limiter: LimiterConfig, decision: Decision, headers: [(String, String)]) -> LocalResponse {
        let body = ErrorBody.rateLimited(
            limiterID: limiter.id,
            limit: decision.limit,
            retryAfterSeconds: RateLimitHeaders.retryAfterSeconds(decision)
        )
        return LocalResponse(status: .tooManyRequests, headers: headers, body: body)
    }

    static func limiterUnavailable(limiter: LimiterConfig, retryAfterSeconds: Int) -> LocalResponse {
        LocalResponse(
            status: .serviceUnavailable,
            headers: [("Retry-After", String(retryAfterSeconds))],
            body: ErrorBody.limiterUnavailable(limiterID: limiter.id, retryAfterSeconds: retryAfterSeconds)
        )
    }

    static func badGateway() -> LocalResponse {
        LocalResponse(
            status: .badGateway,
            headers: [],
            body: ErrorBody.simple(type: "upstream_unavailable", message: "The upstream service could not be reached.")
        )
    }

    static func gatewayTimeout() -> LocalResponse {
        LocalResponse(
            status: .gatewayTimeout,
            headers: [],
            body: ErrorBody.simple(type: "upstream_timeout", message: "The upstream service did not answer in time.")
        )
    }

    static func headersTooLarge() -> LocalResponse {
        LocalResponse(
            status: .requestHeaderFieldsTooLarge,
            headers: [],
            body: ErrorBody.simple(type: "headers_too_large", message: "The request headers are too large.")
        )
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
