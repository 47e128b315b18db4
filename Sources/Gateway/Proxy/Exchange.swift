import NIOCore
import NIOHTTP1

/// One request/response pair passing through a client connection.
final class Exchange {
    let clientHead: HTTPRequestHead
    let target: GatewayRuntime.RouteTarget
    let upstreamHead: HTTPRequestHead
    let clientKeepAlive: Bool
    let expectsContinue: Bool

    /// Body parts that arrived while the limiter or the upstream connection was pending.
    /// An array, not a CircularBuffer: empty, it costs no allocation, and it is usually empty.
    var pendingParts: [HTTPClientRequestPart] = []
    var requestEnded = false
    var continueSent = false
    var responseStarted = false
    var rateLimitHeaders: [(String, String)] = []
    var heldSlots: [HeldSlots] = []
    /// When the upstream's answer must have started; set once the whole request is sent.
    var responseDeadline: NIODeadline?
    /// When the request went to the upstream, for the upstream latency.
    var upstreamStarted: NIODeadline?
    /// The event loop's pool for the route's upstream, once looked up.
    var pool: UpstreamPool?
    /// Whether the upstream connection may serve another request after this one.
    var upstreamReusable = true
    /// Whether the client connection must close after this response.
    var closeClientAfterResponse = false
    /// Sent to the upstream on a reused connection, and nothing has come back yet: retryable once.
    var mayRetryOnFreshConnection = false

    init(
        clientHead: HTTPRequestHead,
        target: GatewayRuntime.RouteTarget,
        upstreamHead: HTTPRequestHead
    ) {
        self.clientHead = clientHead
        self.target = target
        self.upstreamHead = upstreamHead
        self.clientKeepAlive = clientHead.keepsClientConnectionOpen
        self.expectsContinue = Self.expectsContinue(clientHead.headers)
    }

    /// `Expect: 100-continue`, checked without building an array of values per request.
    static func expectsContinue(_ headers: HTTPHeaders) -> Bool {
        guard let expect = headers.first(name: "expect") else { return false }
        return expect.asciiCaseInsensitiveEquals("100-continue")
    }

    func releaseSlots() {
        let slots = heldSlots
        heldSlots = []
        for slot in slots { slot.release() }
    }
}

extension HTTPRequestHead {
    /// Whether the client's connection stays open once this request is answered. NIO's
    /// `isKeepAlive` knows HTTP/1 only and says no to HTTP/2, where a request is one stream of
    /// the connection: its answer ends the stream, never the connection.
    var keepsClientConnectionOpen: Bool {
        version.major == 2 || isKeepAlive
    }
}
