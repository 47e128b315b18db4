import NIOCore
import NIOHTTP1
import RateSync

/// What one request/response pair passing through a client connection carries: its heads, its
/// route, the body parts that wait with it, the limiter's slots and headers. How far it got is
/// ExchangeStateMachine's business.
final class Exchange {
    /// The client's request, with what its fields say.
    let client: ClientRequest
    let target: GatewayRuntime.RouteTarget
    let upstreamRequest: UpstreamRequest

    /// Body parts that arrived while the limiter or the upstream connection was pending (kept
    /// until the upstream answers when the request may be sent again on a fresh connection).
    /// An array, not a CircularBuffer: empty, it costs no allocation, and it is usually empty.
    var pendingParts: [HTTPClientRequestPart] = []
    var rateLimitHeaders: RateLimitHeaders?
    var heldSlots: [StoreHold] = []
    /// When the request went to the upstream, for the upstream latency.
    var upstreamStarted: NIODeadline?
    /// The event loop's pool for the target the request goes to, once chosen.
    var pool: UpstreamPool?
    /// The upstream's targets this request was sent to, in order (a connect that fails moves on).
    var triedTargets: [Int] = []
    /// Whether its upstream connection had carried a request before.
    var onReusedConnection = false
    /// The client's address, for `client_ip_hash` (empty for other balancers).
    let clientAddress: String

    init(client: ClientRequest, target: GatewayRuntime.RouteTarget, upstreamRequest: UpstreamRequest, clientAddress: String) {
        self.client = client
        self.target = target
        self.upstreamRequest = upstreamRequest
        self.clientAddress = clientAddress
    }

    func releaseSlots() {
        let slots = heldSlots
        heldSlots = []
        for slot in slots { slot.release() }
    }
}
