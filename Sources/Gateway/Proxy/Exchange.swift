import NIOCore
import NIOHTTP1

/// What one request/response pair passing through a client connection carries: its heads, its
/// route, the body parts that wait with it, the limiter's slots and headers. How far it got is
/// ExchangeStateMachine's business.
final class Exchange {
    let clientHead: HTTPRequestHead
    let target: GatewayRuntime.RouteTarget
    let upstreamHead: HTTPRequestHead

    /// Body parts that arrived while the limiter or the upstream connection was pending (kept
    /// until the upstream answers when the request may be sent again on a fresh connection).
    /// An array, not a CircularBuffer: empty, it costs no allocation, and it is usually empty.
    var pendingParts: [HTTPClientRequestPart] = []
    var rateLimitHeaders: [(String, String)] = []
    var heldSlots: [HeldSlots] = []
    /// When the request went to the upstream, for the upstream latency.
    var upstreamStarted: NIODeadline?
    /// The event loop's pool for the route's upstream, once looked up.
    var pool: UpstreamPool?

    init(clientHead: HTTPRequestHead, target: GatewayRuntime.RouteTarget, upstreamHead: HTTPRequestHead) {
        self.clientHead = clientHead
        self.target = target
        self.upstreamHead = upstreamHead
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
    /// Whether the client's connection stays open once this request is answered. On HTTP/2 a
    /// request is one stream of the connection: its answer ends the stream, never the connection.
    var keepsClientConnectionOpen: Bool {
        ConnectionOptions(headers).keepsAlive(version)
    }
}
