import NIOCore
import NIOHTTP1
import Prometheus
import RateSync

/// What the admin endpoints read: always the current configuration's stores and metrics.
struct AdminContext: Sendable {
    let resources: LoopResourcesRegistry
    let metricsRegistry: PrometheusCollectorRegistry?
}

/// The admin listener: `/healthz` (the process serves), `/health/rate-limiter` (every store in
/// use answers) and `/metrics` (Prometheus text). Requests here are few; answers are small and
/// built on demand.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let admin: AdminContext
    private var requestHead: HTTPRequestHead?

    init(admin: AdminContext) {
        self.admin = admin
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            requestHead = head
        case .body:
            break
        case .end:
            guard let head = requestHead else { return }
            requestHead = nil
            route(head, context: context)
        }
    }

    /// A request the decoder could not read (told only once the answers before it are written):
    /// the proxy's answer to it (400, 431, 501 or 505), then the connection closes.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let failure = error as? HTTP1RequestError else {
            context.close(promise: nil)
            return
        }
        let answer = LocalResponse.unreadable(failure)
        send(context, answer.head(version: .http1_1, close: true), body: answer.body, keepAlive: false)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case IdleStateHandler.IdleStateEvent.read = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func route(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard head.method == .GET || head.method == .HEAD else {
            respond(context, head, .methodNotAllowed, ErrorBody.simple(type: "method_not_allowed", message: "Use GET."))
            return
        }
        switch path {
        case "/healthz":
            respond(context, head, .ok, "{\"status\":\"ok\"}")
        case "/metrics":
            guard let registry = admin.metricsRegistry else {
                respond(context, head, .notFound, ErrorBody.simple(type: "not_found", message: "Metrics are off."))
                return
            }
            let runtime = admin.resources.runtime
            for store in runtime.stores.values { runtime.metrics.recordStoreState(store) }
            runtime.metrics.waiting.record(Double(runtime.waitingRoom.waiting))
            for targets in runtime.upstreamTargets { runtime.metrics.recordTargetHealth(targets) }
            admin.resources.metricTotals(on: context.eventLoop).assumeIsolated().whenSuccess { totals in
                runtime.metrics.inFlight.record(Double(totals.requestsInFlight))
                var text = registry.emitToString()
                runtime.metrics.loopSeries.emit(totals: totals.counts, into: &text)
                self.respond(context, head, .ok, text, contentType: "text/plain; version=0.0.4")
            }
        case "/health/rate-limiter":
            StoreHealth(stores: Array(admin.resources.runtime.stores.values)).report(on: context.eventLoop).assumeIsolated().whenComplete { result in
                switch result {
                case .success(let report):
                    self.respond(context, head, report.healthy ? .ok : .serviceUnavailable, report.json)
                case .failure(let error):
                    let body = "{\"status\":\"unhealthy\",\"error\":\(ErrorBody.jsonString("\(error)"))}"
                    self.respond(context, head, .serviceUnavailable, body)
                }
            }
        default:
            respond(context, head, .notFound, ErrorBody.simple(type: "not_found", message: "No such admin endpoint."))
        }
    }

    private func respond(
        _ context: ChannelHandlerContext,
        _ request: HTTPRequestHead,
        _ status: HTTPResponseStatus,
        _ body: String,
        contentType: String = "application/json"
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.utf8.count))
        if !request.isKeepAlive { headers.add(name: "connection", value: "close") }
        // A HEAD's answer says the length of the body a GET would get, and has none.
        send(
            context,
            HTTPResponseHead(version: .http1_1, status: status, headers: headers),
            body: request.method == .HEAD ? nil : body,
            keepAlive: request.isKeepAlive
        )
    }

    /// Writes an answer, then closes the connection unless it is kept alive.
    private func send(_ context: ChannelHandlerContext, _ head: HTTPResponseHead, body: String?, keepAlive: Bool) {
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        if let body {
            var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
            buffer.writeString(body)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
