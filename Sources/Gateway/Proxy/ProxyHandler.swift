import NIOCore
import NIOHTTP1
import NIOPosix
import RateSync

/// The client side of the proxy, one per client connection: route, identify, limit, then stream
/// the request to a leased upstream connection and the response back.
///
/// Backpressure: client reads are withheld while the limiter or the upstream connection is
/// pending and whenever the upstream connection cannot take more; upstream reads are withheld
/// whenever the client cannot take more. Nothing is ever buffered whole.
final class ProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// Waiting for the limiters' verdict.
        case limiting(Exchange)
        /// Admitted; waiting for an upstream connection.
        case connecting(Exchange)
        case proxying(Exchange, UpstreamConnection)
        /// The gateway answered on its own before the request ended: read and drop the rest of
        /// the body (up to a budget), then serve the next request or close.
        case discarding(remainingBudget: Int, keepAlive: Bool)
        case closed
    }

    /// How much of an unwanted request body is read before the connection is simply closed.
    private static let discardBudget = 1 << 20

    private let runtime: GatewayRuntime
    private let resources: LoopResources
    private var context: ChannelHandlerContext?
    private var state: State = .idle
    private var readPending = false
    private var upstreamNeedsFlush = false
    private var peerAddress: IPAddress?
    /// The write of the last response's end: a close waits for it, so no answer is cut short.
    private var lastResponseEnd: EventLoopFuture<Void>?

    init(runtime: GatewayRuntime, resources: LoopResources) {
        self.runtime = runtime
        self.resources = resources
    }

    // MARK: channel lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        peerAddress = context.channel.remoteAddress?.ipAddress.flatMap(IPAddress.init)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .limiting(let exchange), .connecting(let exchange):
            exchange.releaseSlots()
        case .proxying(let exchange, let connection):
            exchange.responseTimeout?.cancel()
            exchange.releaseSlots()
            connection.handler.close()
        case .idle, .discarding, .closed:
            break
        }
        state = .closed
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The idle timer: only a connection with nothing in flight is idle.
        if event is IdleStateHandler.IdleStateEvent {
            if case .idle = state { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Parser errors were answered by ProtocolErrorResponder; anything else ends the connection.
        context.close(promise: nil)
    }

    // MARK: reads (backpressure)

    func read(context: ChannelHandlerContext) {
        if readsAllowed {
            context.read()
        } else {
            readPending = true
        }
    }

    private var readsAllowed: Bool {
        switch state {
        case .idle, .discarding:
            return true
        case .limiting, .connecting, .closed:
            return false
        case .proxying(let exchange, let connection):
            return exchange.requestEnded || connection.channel.isWritable
        }
    }

    private func resumeReadsIfAllowed() {
        guard readPending, readsAllowed, let context else { return }
        readPending = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .proxying(_, let connection) = state {
            connection.handler.resumeReads()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: request parts

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            if case .idle = state { begin(head) }
        case .body(let buffer):
            forwardRequestPart(.body(.byteBuffer(buffer)), size: buffer.readableBytes)
        case .end(let trailers):
            forwardRequestPart(.end(trailers), size: 0)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if upstreamNeedsFlush, case .proxying(_, let connection) = state {
            upstreamNeedsFlush = false
            connection.handler.flush()
        }
        context.fireChannelReadComplete()
    }

    private func forwardRequestPart(_ part: HTTPClientRequestPart, size: Int) {
        let isEnd: Bool
        if case .end = part { isEnd = true } else { isEnd = false }
        switch state {
        case .limiting(let exchange), .connecting(let exchange):
            exchange.pendingParts.append(part)
            exchange.requestEnded = isEnd
        case .proxying(let exchange, let connection):
            connection.handler.write(part)
            upstreamNeedsFlush = true
            if isEnd {
                exchange.requestEnded = true
                if !exchange.responseStarted { scheduleResponseTimeout(exchange, connection) }
            }
        case .discarding(let budget, let keepAlive):
            if isEnd && keepAlive {
                state = .idle
            } else if isEnd || budget - size < 0 {
                closeConnection()
            } else {
                state = .discarding(remainingBudget: budget - size, keepAlive: keepAlive)
            }
        case .idle, .closed:
            break
        }
    }

    // MARK: the exchange

    private func begin(_ head: HTTPRequestHead) {
        guard let path = RequestPath(uri: head.uri) else {
            answerLocally(.badRequest("The request target is not a valid path."), to: head, requestEnded: false)
            return
        }
        let host = head.headers.first(name: "host")
        guard let routeIndex = runtime.router.match(path: path.path, method: head.method.rawValue, host: host) else {
            answerLocally(.notFound(), to: head, requestEnded: false)
            return
        }
        let target = runtime.targets[routeIndex]
        let peer = peerAddress
        let resolver = runtime.clientIPResolver
        let identity = IdentifierExtractor.identify(rule: target.route.identifier, headers: head.headers) {
            guard let peer else { return IPAddress("0.0.0.0")! }
            return resolver.resolve(peer: peer, forwardedFor: head.headers["x-forwarded-for"])
        }
        let identifier: String
        switch identity {
        case .identifier(let value):
            identifier = value
        case .missingHeader(let name):
            answerLocally(.badRequest("The \(name) header is required."), to: head, requestEnded: false)
            return
        }

        let upstreamHead = ForwardedHeaders.upstreamRequest(
            from: head,
            uri: path.uri,
            peerAddress: peer?.description ?? "unknown",
            upstream: target.upstream
        )
        let exchange = Exchange(clientHead: head, target: target, upstreamHead: upstreamHead)
        state = .limiting(exchange)
        if target.limiters.isEmpty {
            apply(.admit(headers: [], heldSlots: []), to: exchange)
            return
        }
        guard let context else { return }
        LimitEvaluation.evaluate(limiters: target.limiters, identifier: identifier, on: context.eventLoop)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let verdict): self.apply(verdict, to: exchange)
                case .failure: self.apply(.admit(headers: [], heldSlots: []), to: exchange)
                }
            }
    }

    private func apply(_ verdict: LimitVerdict, to exchange: Exchange) {
        guard case .limiting(let current) = state, current === exchange else {
            // The client left while the limiter was deciding.
            if case .admit(_, let slots) = verdict { slots.forEach { $0.release() } }
            return
        }
        switch verdict {
        case .deny(let limiter, let decision, let headers):
            answerLocally(
                .rateLimited(limiter: limiter, decision: decision, headers: headers),
                to: exchange.clientHead,
                requestEnded: exchange.requestEnded
            )
        case .unavailable(let limiter, _):
            answerLocally(
                .limiterUnavailable(limiter: limiter, retryAfterSeconds: 1),
                to: exchange.clientHead,
                requestEnded: exchange.requestEnded
            )
        case .admit(let headers, let slots):
            exchange.rateLimitHeaders = headers
            exchange.heldSlots = slots
            if exchange.expectsContinue && !exchange.requestEnded, let context {
                exchange.continueSent = true
                context.writeAndFlush(
                    Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))),
                    promise: nil
                )
            }
            state = .connecting(exchange)
            connectUpstream(exchange)
        }
    }

    private func connectUpstream(_ exchange: Exchange) {
        let pool = resources.pool(for: exchange.target.upstream)
        pool.acquire { result in
            guard case .connecting(let current) = self.state, current === exchange else {
                if case .success(let connection) = result { pool.release(connection, reusable: true) }
                return
            }
            switch result {
            case .success(let connection):
                self.startProxying(exchange, on: connection)
            case .failure(let error):
                exchange.releaseSlots()
                self.answerLocally(
                    Self.isTimeout(error) ? .gatewayTimeout() : .badGateway(),
                    to: exchange.clientHead,
                    requestEnded: exchange.requestEnded,
                    continueSent: exchange.continueSent
                )
            }
        }
    }

    private func startProxying(_ exchange: Exchange, on connection: UpstreamConnection) {
        connection.handler.delegate = self
        state = .proxying(exchange, connection)
        // A request with no body yet in flight can be replayed if a reused connection turns out
        // to have been closed by the upstream while idle.
        exchange.mayRetryOnFreshConnection = connection.hasBeenUsed && exchange.requestEnded
            && exchange.pendingParts.count <= 1
        connection.handler.write(.head(exchange.upstreamHead))
        for part in exchange.pendingParts { connection.handler.write(part) }
        if !exchange.mayRetryOnFreshConnection { exchange.pendingParts.removeAll() }
        connection.handler.flush()
        if exchange.requestEnded { scheduleResponseTimeout(exchange, connection) }
        resumeReadsIfAllowed()
    }

    private func scheduleResponseTimeout(_ exchange: Exchange, _ connection: UpstreamConnection) {
        guard let context, exchange.responseTimeout == nil else { return }
        let timeout = TimeAmount.milliseconds(Int64(exchange.target.upstream.responseTimeoutMs))
        exchange.responseTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            guard case .proxying(let current, _) = self.state, current === exchange, !exchange.responseStarted else {
                return
            }
            connection.handler.close()
            exchange.releaseSlots()
            self.answerLocally(
                .gatewayTimeout(),
                to: exchange.clientHead,
                requestEnded: exchange.requestEnded,
                continueSent: exchange.continueSent
            )
        }
    }

    /// The exchange is over on both sides: give the connection back and get ready for the next.
    private func finishExchange(_ exchange: Exchange, _ connection: UpstreamConnection) {
        exchange.responseTimeout?.cancel()
        exchange.releaseSlots()
        resources.pool(for: exchange.target.upstream).release(
            connection,
            reusable: exchange.upstreamReusable && exchange.requestEnded
        )
        if exchange.closeClientAfterResponse || !exchange.requestEnded {
            closeConnection()
        } else {
            state = .idle
            resumeReadsIfAllowed()
        }
    }

    // MARK: local answers

    private func answerLocally(
        _ response: LocalResponse,
        to head: HTTPRequestHead,
        requestEnded: Bool,
        continueSent: Bool = false
    ) {
        guard let context else { return }
        // A client that sent `Expect: 100-continue` and was never told to continue may never
        // send its body: the connection cannot carry another request, so it closes.
        let expectsContinue = head.headers[canonicalForm: "expect"].contains { $0.lowercased() == "100-continue" }
        let bodyWithheld = !requestEnded && expectsContinue && !continueSent
        let close = !head.isKeepAlive || bodyWithheld
        var body = context.channel.allocator.buffer(capacity: response.body.utf8.count)
        body.writeString(response.body)
        context.write(Self.wrapOutboundOut(.head(response.head(version: head.version, close: close))), promise: nil)
        context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        writeResponseEnd(nil)
        if requestEnded {
            if close { closeConnection() } else { state = .idle }
        } else if bodyWithheld {
            closeConnection()
        } else {
            state = .discarding(remainingBudget: Self.discardBudget, keepAlive: !close)
        }
        resumeReadsIfAllowed()
    }

    private func writeResponseEnd(_ trailers: HTTPHeaders?) {
        guard let context else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(Self.wrapOutboundOut(.end(trailers)), promise: promise)
        lastResponseEnd = promise.futureResult
    }

    /// Closes once the last response has been written, so a final answer is never cut off.
    private func closeConnection() {
        state = .closed
        guard let pending = lastResponseEnd else {
            context?.close(promise: nil)
            return
        }
        pending.assumeIsolated().whenComplete { _ in
            self.context?.close(promise: nil)
        }
    }

    static func isTimeout(_ error: any Error) -> Bool {
        if let channelError = error as? ChannelError, case .connectTimeout = channelError { return true }
        if let connectionError = error as? NIOConnectionError {
            return connectionError.connectionErrors.contains { isTimeout($0.error) }
                || connectionError.dnsAAAAError.map(isTimeout) == true
        }
        return false
    }
}

// MARK: - upstream events

extension ProxyHandler: UpstreamResponseDelegate {
    func upstreamResponse(_ part: HTTPClientResponsePart) {
        guard case .proxying(let exchange, let connection) = state, let context else { return }
        exchange.mayRetryOnFreshConnection = false
        exchange.pendingParts.removeAll()
        switch part {
        case .head(let head):
            exchange.responseTimeout?.cancel()
            exchange.responseStarted = true
            exchange.upstreamReusable = head.isKeepAlive
            let clientHead = exchange.clientHead
            let closeAfter = !exchange.clientKeepAlive
                || ForwardedHeaders.needsCloseDelimiting(head, requestVersion: clientHead.version, method: clientHead.method)
            exchange.closeClientAfterResponse = closeAfter
            let responseHead = ForwardedHeaders.clientResponse(
                from: head,
                requestVersion: clientHead.version,
                keepAlive: !closeAfter,
                rateLimitHeaders: exchange.rateLimitHeaders
            )
            context.write(Self.wrapOutboundOut(.head(responseHead)), promise: nil)
        case .body(let buffer):
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            if !context.channel.isWritable {
                // Pause before flushing: the flush may drain the socket and report the channel
                // writable again at once, and that resume must come after this pause.
                connection.handler.pauseReads()
                context.flush()
            }
        case .end(let trailers):
            writeResponseEnd(trailers)
            finishExchange(exchange, connection)
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeReadsIfAllowed() }
    }

    func upstreamClosed(error: (any Error)?) {
        guard case .proxying(let exchange, _) = state else { return }
        exchange.responseTimeout?.cancel()
        exchange.responseTimeout = nil
        if exchange.mayRetryOnFreshConnection {
            // The upstream closed an idle kept-alive connection just as we reused it: nothing was
            // answered and the whole request is still here, so send it again on a new connection.
            exchange.mayRetryOnFreshConnection = false
            state = .connecting(exchange)
            connectUpstream(exchange)
            return
        }
        exchange.releaseSlots()
        if exchange.responseStarted {
            // Half a response already went out: the only honest signal left is to cut the connection.
            state = .closed
            context?.close(promise: nil)
        } else {
            answerLocally(
                .badGateway(),
                to: exchange.clientHead,
                requestEnded: exchange.requestEnded,
                continueSent: exchange.continueSent
            )
        }
    }
}
