import NIOCore
import NIOHTTP1
import NIOPosix
import RateSync

/// The client side of the proxy, one per HTTP/1.1 connection or HTTP/2 stream (its ClientSide):
/// route, identify, limit, then stream the request to a leased upstream connection and the
/// response back.
///
/// Backpressure: client reads are withheld while a request body waits for the limiter or the
/// upstream connection, while the upstream connection cannot take more, and while a pipelined
/// request waits; upstream reads are withheld whenever the client cannot take more. Nothing is
/// buffered whole. Reads are otherwise left on, so a keep-alive connection costs no epoll change
/// per request.
final class ProxyHandler: ChannelDuplexHandler, DrainableConnection {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum State {
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
    static let discardBudget = 1 << 20

    let resources: LoopResources
    /// This loop's access-log batch, when the access log is on.
    private let accessLog: AccessLogBatch?
    /// The access-log line of the request being answered.
    var logEntry: AccessLogEntry?
    /// Whether the in-flight gauge counts a request of this connection now.
    private var requestInFlight = false
    /// Set on SIGTERM: finish the current exchange, then close.
    private var draining = false
    var isDraining: Bool { draining }

    /// The configuration this loop serves now (replaced whole on reload).
    var runtime: GatewayRuntime { resources.runtime }
    /// The HTTP/1.1 connection or HTTP/2 stream this handler serves; nil once it has closed.
    var client: ClientSide?
    var state: State = .idle
    private var readPending = false
    private var upstreamNeedsFlush = false
    /// Parts of requests that arrived while another was in flight (HTTP pipelining), replayed in
    /// order once it ends. While any wait, reads are withheld, so there are only ever a few. An
    /// array: empty, it costs no allocation, and a handler serves one HTTP/2 stream's request.
    private var queuedParts: [HTTPServerRequestPart] = []
    /// Bytes that were no request arrived after the queued parts: answered once they are.
    private var pendingRequestError: HTTP1RequestError?
    /// Since when the client has taken none of what is written to it (its connection or stream
    /// not writable); past `send_timeout_seconds` it is closed.
    private var sendStalledSince: NIODeadline?
    private var drainingQueue = false
    /// Whether a response head has gone out whose end has not.
    var responseInProgress = false
    /// The write of the last response's end when a close may follow it: a close waits for it, so
    /// no answer is cut short.
    private var lastResponseEnd: EventLoopFuture<Void>?
    /// The client connection's address, parsed once per connection.
    private let peer: ClientPeer
    /// The peer's canonical text: most requests' identifier.
    private var peerText: String { peer.text }
    /// Created on first use: a short-lived HTTP/2 stream may never need one.
    private var timer: ConnectionTimer?
    /// Last time the client sent something or the connection became idle.
    private var lastClientActivity = NIODeadline.now()

    /// "https" when the client connection is TLS: what X-Forwarded-Proto tells the upstream.
    private let scheme: String

    /// Set when this handler serves one HTTP/2 stream: the connection's timer for its streams'
    /// deadlines. (The connection's idleness is not the stream's business.)
    private let streamDeadlines: StreamDeadlines?
    private var isStream: Bool { streamDeadlines != nil }

    /// - Parameters:
    ///   - peer: the client connection's address (the streams of one HTTP/2 connection share it).
    ///   - streamDeadlines: for an HTTP/2 stream, its connection's deadline timer.
    init(
        resources: LoopResources,
        accessLog: AccessLog?,
        scheme: String,
        peer: ClientPeer,
        streamDeadlines: StreamDeadlines? = nil
    ) {
        self.resources = resources
        self.accessLog = accessLog.map { resources.accessLogBatch(for: $0) }
        self.scheme = scheme
        self.peer = peer
        self.streamDeadlines = streamDeadlines
    }

    // MARK: channel lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        client = .connection(context)
        lastClientActivity = .now()
        armTimer(at: lastClientActivity + idleTimeout)
        resources.register(self)
        if resources.draining { drain() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        resources.unregister(self)
        client = nil
    }

    /// Serves one HTTP/2 stream, which its connection's handler drives. (A stream is drained with
    /// its connection: GOAWAY, then the streams already open finish.)
    func attach(to stream: HTTP2ClientStream) {
        client = .stream(stream)
        lastClientActivity = .now()
    }

    /// Closes now if idle, else once the exchange in flight is over (its answer says so).
    func drain() {
        draining = true
        if case .idle = state { closeConnection() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientClosed()
        context.fireChannelInactive()
    }

    /// The client connection or stream is gone: give back what the exchange held. Idempotent.
    func clientClosed() {
        switch state {
        case .limiting(let exchange), .connecting(let exchange):
            exchange.releaseSlots()
        case .proxying(let exchange, let connection):
            exchange.releaseSlots()
            connection.handler.close()
        case .idle, .discarding, .closed:
            break
        }
        state = .closed
        queuedParts.removeAll()
        cancelTimer()
        endRequestInFlight()
        // A stream and its handler refer to each other; a connection's pipeline lets go by itself.
        if isStream { client = nil }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let requestError = error as? HTTP1RequestError {
            clientRequestFailed(requestError)
            return
        }
        // Anything else (a reset, say) ends the connection. The exchange in flight gives back its
        // slots and its upstream connection now: once the state says closed, the close that
        // follows has nothing left to release.
        clientClosed()
        context.close(promise: nil)
    }

    /// The client sent bytes that are no request (the parser reads nothing after them). Requests
    /// read before them are answered first; then the error's answer goes out and the connection
    /// closes. When the broken bytes are the body of the request in flight, that exchange cannot
    /// complete: the upstream connection is closed, never reused with half a request on it.
    private func clientRequestFailed(_ error: HTTP1RequestError) {
        if !queuedParts.isEmpty {
            pendingRequestError = error
            return
        }
        switch state {
        case .limiting(let exchange), .connecting(let exchange):
            if exchange.requestEnded {
                pendingRequestError = error
                return
            }
            exchange.releaseSlots()
        case .proxying(let exchange, let connection):
            if exchange.requestEnded {
                pendingRequestError = error
                return
            }
            exchange.releaseSlots()
            connection.handler.close()
        case .discarding:
            // The body of a request already answered: nothing more to say.
            closeConnection()
            return
        case .idle:
            break
        case .closed:
            return
        }
        answerUnreadableRequest(error)
    }

    /// 431 for an oversized head, 400 for bytes that are not HTTP/1.1, 501 for a transfer
    /// coding we do not read, 505 for another HTTP version; then the connection closes. If an
    /// answer is already on its way, the connection simply closes.
    private func answerUnreadableRequest(_ error: HTTP1RequestError) {
        pendingRequestError = nil
        if !responseInProgress {
            if logEntry == nil {
                logEntry = AccessLogEntry(start: .now(), client: peerText, method: "-", path: "-")
            }
            writeLocal(.unreadable(error), version: .http1_1, close: true)
        }
        closeConnection()
    }

    // MARK: reads (backpressure)

    func read(context: ChannelHandlerContext) {
        if mayRead() { context.read() }
    }

    /// Whether more of the request may come now; if not, it is asked for once it may.
    func mayRead() -> Bool {
        if readsAllowed { return true }
        readPending = true
        return false
    }

    private var readsAllowed: Bool {
        guard queuedParts.isEmpty, pendingRequestError == nil else { return false }
        switch state {
        case .idle, .discarding:
            // A client that does not read its answers sends no more requests: what it would
            // make us answer would pile up unsent.
            return client?.isWritable ?? false
        case .limiting(let exchange), .connecting(let exchange):
            // A body waits for the verdict and the connection. A request already whole can only
            // be followed by a pipelined one, whose head is queued (stopping reads again): so
            // reads stay on, and a request decided by Redis costs no epoll change to pause
            // and resume them.
            return exchange.requestEnded
        case .closed:
            return false
        case .proxying(let exchange, let connection):
            return exchange.requestEnded || connection.channel.isWritable
        }
    }

    func resumeReadsIfAllowed() {
        guard readPending, readsAllowed, let client else { return }
        readPending = false
        client.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        clientWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func clientWritabilityChanged() {
        guard client?.isWritable == true else {
            if sendStalledSince == nil {
                let now = NIODeadline.now()
                sendStalledSince = now
                armTimer(at: now + sendTimeout)
            }
            return
        }
        sendStalledSince = nil
        if case .proxying(_, let connection) = state {
            connection.handler.resumeReads()
        }
        resumeReadsIfAllowed()
    }

    // MARK: request parts

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(Self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        clientReadComplete()
        context.fireChannelReadComplete()
    }

    func receive(_ part: HTTPServerRequestPart) {
        lastClientActivity = .now()
        if !queuedParts.isEmpty || belongsToNextRequest(part) {
            queuedParts.append(part)
            return
        }
        handle(part)
    }

    /// The end of a batch of reads: what was forwarded leaves for the upstream in one flush.
    func clientReadComplete() {
        if upstreamNeedsFlush, case .proxying(_, let connection) = state {
            upstreamNeedsFlush = false
            connection.handler.flush()
        }
    }

    /// A head that arrives while an exchange is still in flight is a pipelined request.
    private func belongsToNextRequest(_ part: HTTPServerRequestPart) -> Bool {
        guard case .head = part else { return false }
        switch state {
        case .idle, .closed: return false
        case .limiting, .connecting, .proxying, .discarding: return true
        }
    }

    private func handle(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            if case .idle = state { begin(head) }
        case .body(let buffer):
            forwardRequestPart(.body(.byteBuffer(buffer)), size: buffer.readableBytes)
        case .end(let trailers):
            forwardRequestPart(.end(trailers), size: 0)
        }
    }

    /// Replays pipelined requests once the connection is idle again.
    private func drainQueuedParts() {
        guard !drainingQueue else { return }
        drainingQueue = true
        defer { drainingQueue = false }
        while let part = queuedParts.first {
            if belongsToNextRequest(part) { break }
            queuedParts.removeFirst()
            handle(part)
        }
        if upstreamNeedsFlush, case .proxying(_, let connection) = state {
            upstreamNeedsFlush = false
            connection.handler.flush()
        }
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
                if !exchange.responseStarted { startResponseClock(exchange) }
            }
        case .discarding(let budget, let keepAlive):
            if isEnd && keepAlive {
                becomeIdle()
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
        let runtime = self.runtime
        resources.requestsInFlight += 1
        requestInFlight = true
        // Walked at most once per request, whether the access log or the identifier asks first.
        var resolvedClient: String?
        func client() -> String {
            if let resolvedClient { return resolvedClient }
            let address = clientIP(head)
            resolvedClient = address
            return address
        }
        if accessLog != nil {
            logEntry = AccessLogEntry(start: .now(), client: client(), method: head.method.rawValue, path: head.uri)
        }
        switch head.method {
        case .TRACE:
            // What a TRACE echoes back can reveal what proxies added (nginx refuses it too).
            answerLocally(.methodNotAllowed(head.method), to: head, requestEnded: false)
            return
        case .CONNECT:
            // Never a tunnel: after CONNECT a client's bytes are no longer HTTP.
            answerLocally(.methodNotAllowed(head.method), to: head, requestEnded: false, close: true)
            return
        default:
            break
        }
        guard let path = RequestPath(uri: head.uri) else {
            answerLocally(.badRequest("The request target is not a valid path."), to: head, requestEnded: false)
            return
        }
        let authority: String?
        switch RequestAuthority.resolve(head, targetAuthority: path.authority) {
        case .success(let resolved):
            authority = resolved
        case .failure(.missingHost):
            answerLocally(.badRequest("An HTTP/1.1 request must carry a Host header."), to: head, requestEnded: false, close: true)
            return
        case .failure(.repeatedHost):
            answerLocally(.badRequest("The request carries more than one Host header."), to: head, requestEnded: false, close: true)
            return
        case .failure(.invalidHost):
            answerLocally(.badRequest("The request's host is not a valid host[:port]."), to: head, requestEnded: false, close: true)
            return
        }
        guard let routeIndex = runtime.router.match(path: path.path, method: head.method.rawValue, host: authority) else {
            answerLocally(.notFound(), to: head, requestEnded: false)
            return
        }
        let target = runtime.targets[routeIndex]
        logEntry?.route = target.route.name
        logEntry?.upstream = target.upstream.name
        let identifier: String
        switch IdentifierExtractor.identify(rule: target.route.identifier, headers: head.headers, clientIP: client) {
        case .identifier(let value):
            identifier = value
        case .missingHeader(let name):
            answerLocally(.badRequest("The \(name) header is required."), to: head, requestEnded: false)
            return
        }

        let framing = RequestBodyFraming(head)
        let upstreamHead = ForwardedHeaders.upstreamRequest(
            from: head,
            authority: authority,
            framing: framing,
            uri: path.uri,
            peerAddress: peerText,
            scheme: scheme,
            upstream: target.upstream
        )
        let exchange = Exchange(clientHead: head, target: target, upstreamHead: upstreamHead)
        // Until upgrades are proxied, an upgrade request is answered as a plain request (its
        // Upgrade header does not reach the upstream) and the connection then closes: what the
        // client sends after it is not HTTP.
        if head.version.major == 1 && head.headers.contains(name: "upgrade") {
            exchange.closeClientAfterResponse = true
        }
        state = .limiting(exchange)
        if target.limiters.isEmpty {
            apply(.admit(headers: [], heldSlots: []), to: exchange)
            return
        }
        if let verdict = LimitEvaluation.evaluateImmediately(limiters: target.limiters, identifier: identifier) {
            apply(verdict, to: exchange)
            return
        }
        guard let clientSide = self.client else { return }
        LimitEvaluation.evaluate(
            limiters: target.limiters,
            identifier: identifier,
            latency: runtime.storeLatency,
            on: clientSide.eventLoop
        ) { verdict in self.apply(verdict, to: exchange) }
    }

    /// The client's canonical address: the peer, or whom a trusted peer forwarded for.
    private func clientIP(_ head: HTTPRequestHead) -> String {
        guard let peer = peer.address, head.headers.contains(name: "x-forwarded-for"),
            runtime.clientIPResolver.isTrusted(peer)
        else {
            return peerText
        }
        return runtime.clientIPResolver.resolve(peer: peer, forwardedFor: head.headers["x-forwarded-for"]).description
    }

    private func apply(_ verdict: LimitVerdict, to exchange: Exchange) {
        guard case .limiting(let current) = state, current === exchange else {
            // The client left while the limiter was deciding.
            if case .admit(_, let slots, _) = verdict { slots.forEach { $0.release() } }
            return
        }
        record(verdict, for: exchange.target)
        switch verdict {
        case .deny(let limiter, let decision, let headers):
            answerLocally(.rateLimited(limiter: limiter, decision: decision, headers: headers), for: exchange)
        case .unavailable(let limiter, let retryAfter):
            answerLocally(.limiterUnavailable(limiter: limiter, retryAfterSeconds: retryAfter), for: exchange)
        case .admit(let headers, let slots, _):
            exchange.rateLimitHeaders = headers
            exchange.heldSlots = slots
            if exchange.expectsContinue && !exchange.requestEnded, let client {
                exchange.continueSent = true
                client.writeAndFlush(.head(HTTPResponseHead(version: .http1_1, status: .continue)), promise: nil)
            }
            state = .connecting(exchange)
            connectUpstream(exchange)
        }
    }

    /// Counts the decision per limiter and notes it for the access log.
    private func record(_ verdict: LimitVerdict, for target: GatewayRuntime.RouteTarget) {
        switch verdict {
        case .admit(_, _, let failedOpen):
            for limiter in target.limiters {
                let outcome: GatewayMetrics.Outcome = failedOpen.contains(limiter.config.id) ? .failedOpen : .allowed
                limiter.decisions.record(outcome)
            }
            if let first = target.limiters.first {
                logEntry?.limiter = failedOpen.first ?? first.config.id
                logEntry?.outcome = failedOpen.isEmpty ? "allowed" : "failed_open"
            }
        case .deny(let limiter, _, _):
            target.limiters.first { $0.config.id == limiter.id }?.decisions.record(.limited)
            logEntry?.limiter = limiter.id
            logEntry?.outcome = "limited"
        case .unavailable(let limiter, _):
            target.limiters.first { $0.config.id == limiter.id }?.decisions.record(.failedClosed)
            logEntry?.limiter = limiter.id
            logEntry?.outcome = "failed_closed"
        }
    }

    func connectUpstream(_ exchange: Exchange) {
        let pool = exchange.pool ?? resources.pool(for: exchange.target)
        exchange.pool = pool
        pool.acquire { result in
            guard case .connecting(let current) = self.state, current === exchange else {
                if case .success(let connection) = result { pool.release(connection, reusable: true) }
                return
            }
            switch result {
            case .success(let connection):
                self.startProxying(exchange, on: connection)
            case .failure(let error):
                self.failExchange(exchange, with: Self.isTimeout(error) ? .gatewayTimeout() : .badGateway())
            }
        }
    }

    private func startProxying(_ exchange: Exchange, on connection: UpstreamConnection) {
        connection.handler.delegate = self
        state = .proxying(exchange, connection)
        exchange.upstreamStarted = exchange.upstreamStarted ?? .now()
        // A request that is complete can be replayed if a reused connection turns out to have
        // been closed by the upstream while idle.
        exchange.mayRetryOnFreshConnection = connection.hasBeenUsed && exchange.requestEnded
        connection.handler.write(.head(exchange.upstreamHead))
        for part in exchange.pendingParts { connection.handler.write(part) }
        if !exchange.mayRetryOnFreshConnection { exchange.pendingParts.removeAll() }
        connection.handler.flush()
        if exchange.requestEnded {
            startResponseClock(exchange)
        } else {
            armTimer(at: lastClientActivity + idleTimeout)
        }
        resumeReadsIfAllowed()
    }

    /// The whole request is with the upstream: its answer must start within the route's timeout.
    private func startResponseClock(_ exchange: Exchange) {
        let deadline = NIODeadline.now() + .milliseconds(Int64(exchange.target.upstream.responseTimeoutMs))
        exchange.responseDeadline = deadline
        armTimer(at: deadline)
    }

    private func armTimer(at deadline: NIODeadline) {
        if let streamDeadlines {
            streamDeadlines.arm(self, at: deadline)
            return
        }
        if timer == nil, let client {
            // Unowned, not weak (which would give the handler a side table and slow its every
            // retain and release): the timer is the handler's alone, so it never outlives it.
            timer = ConnectionTimer(eventLoop: client.eventLoop) { [unowned self] in deadlineReached() }
        }
        timer?.arm(at: deadline)
    }

    private var idleTimeout: TimeAmount {
        TimeAmount(seconds: runtime.server.idleTimeoutSeconds)
    }

    private var sendTimeout: TimeAmount {
        TimeAmount(seconds: runtime.server.sendTimeoutSeconds)
    }

    private func cancelTimer() {
        timer?.cancel()
        streamDeadlines?.disarm(self)
    }

    /// The connection's timer fired: enforce whichever deadline has passed, re-arm for the rest.
    func deadlineReached() {
        let now = NIODeadline.now()
        if let stalled = sendStalledSince {
            if stalled + sendTimeout <= now {
                // The client reads nothing: give back what its exchange holds and let it go.
                clientClosed()
                client?.close()
                return
            }
            armTimer(at: stalled + sendTimeout)
        }
        switch state {
        case .idle, .discarding:
            let idleDeadline = lastClientActivity + idleTimeout
            if idleDeadline <= now { closeConnection() } else { armTimer(at: idleDeadline) }
        case .proxying(let exchange, let connection):
            if let deadline = exchange.responseDeadline, !exchange.responseStarted {
                if deadline <= now {
                    connection.handler.close()
                    failExchange(exchange, with: .gatewayTimeout())
                } else {
                    armTimer(at: deadline)
                }
            } else if !exchange.requestEnded {
                // A client that stops sending its body mid-way holds an upstream connection.
                let stallDeadline = lastClientActivity + idleTimeout
                if stallDeadline <= now {
                    connection.handler.close()
                    exchange.releaseSlots()
                    state = .closed
                    client?.close()
                } else {
                    armTimer(at: stallDeadline)
                }
            }
        case .limiting, .connecting, .closed:
            // The store and the connect attempt have deadlines of their own.
            break
        }
    }

    /// The upstream's answer is complete: give the connection back first, then write the end.
    /// The order matters on HTTP/2, where writing the end may close the stream at once; a
    /// connection still held by the exchange then would be closed with it, not pooled.
    func finishExchange(_ exchange: Exchange, _ connection: UpstreamConnection, trailers: HTTPHeaders?) {
        exchange.releaseSlots()
        state = .closed
        (exchange.pool ?? resources.pool(for: exchange.target)).release(
            connection,
            reusable: exchange.upstreamReusable && exchange.requestEnded
        )
        let closing = exchange.closeClientAfterResponse || !exchange.requestEnded || draining
        writeResponseEnd(trailers, closing: closing)
        if closing {
            closeConnection()
        } else {
            becomeIdle()
        }
    }

    private func becomeIdle() {
        if isStream {
            // A stream carries one request: it is over.
            state = .closed
            cancelTimer()
            return
        }
        if draining {
            closeConnection()
            return
        }
        state = .idle
        lastClientActivity = .now()
        armTimer(at: lastClientActivity + idleTimeout)
        drainQueuedParts()
        if let error = pendingRequestError, queuedParts.isEmpty, case .idle = state {
            answerUnreadableRequest(error)
            return
        }
        resumeReadsIfAllowed()
    }

    // MARK: local answers

    /// The upstream let this exchange down (refused, timed out, reset before answering): count
    /// it, give the limiter slots back, and answer the client.
    func failExchange(_ exchange: Exchange, with response: LocalResponse) {
        exchange.releaseSlots()
        exchange.target.upstreamMetrics.recordFailure()
        answerLocally(response, for: exchange)
    }

    func answerLocally(_ response: LocalResponse, for exchange: Exchange) {
        answerLocally(
            response,
            to: exchange.clientHead,
            requestEnded: exchange.requestEnded,
            continueSent: exchange.continueSent,
            close: exchange.closeClientAfterResponse
        )
    }

    /// - Parameter close: whether the connection must close after this answer whatever the
    ///   request asked.
    func answerLocally(
        _ response: LocalResponse,
        to head: HTTPRequestHead,
        requestEnded: Bool,
        continueSent: Bool = false,
        close mustClose: Bool = false
    ) {
        guard client != nil else { return }
        // A client that sent `Expect: 100-continue` and was never told to continue may never
        // send its body: the connection cannot carry another request, so it closes.
        let bodyWithheld = !requestEnded && Exchange.expectsContinue(head.headers) && !continueSent
        let close = mustClose || !head.keepsClientConnectionOpen || bodyWithheld || draining
        writeLocal(response, version: head.version, close: close)
        if requestEnded {
            if close { closeConnection() } else { becomeIdle() }
        } else if bodyWithheld {
            closeConnection()
        } else {
            state = .discarding(remainingBudget: Self.discardBudget, keepAlive: !close)
            lastClientActivity = .now()
            armTimer(at: lastClientActivity + idleTimeout)
            resumeReadsIfAllowed()
        }
    }

    private func writeLocal(_ response: LocalResponse, version: HTTPVersion, close: Bool) {
        writeResponseHead(response.head(version: version, close: close))
        client?.write(.body(.byteBuffer(ByteBuffer(string: response.body))))
        // A local answer may be followed by a close after the rest of the body is discarded.
        writeResponseEnd(nil, closing: true)
    }

    func writeResponseHead(_ head: HTTPResponseHead) {
        responseInProgress = true
        logEntry?.status = Int(head.status.code)
        client?.write(.head(head))
    }

    /// - Parameter closing: whether the connection may close after this answer: only then is the
    ///   write's completion kept (a close waits for it), sparing a kept-alive connection a promise
    ///   per response.
    func writeResponseEnd(_ trailers: HTTPHeaders?, closing: Bool) {
        guard let client else { return }
        responseInProgress = false
        if closing {
            let promise = client.eventLoop.makePromise(of: Void.self)
            client.writeAndFlush(.end(trailers), promise: promise)
            lastResponseEnd = promise.futureResult
        } else {
            client.writeAndFlush(.end(trailers), promise: nil)
        }
        if let entry = logEntry, let accessLog {
            accessLog.append(entry)
            logEntry = nil
        }
        endRequestInFlight()
    }

    private func endRequestInFlight() {
        guard requestInFlight else { return }
        requestInFlight = false
        resources.requestsInFlight -= 1
    }

    /// Closes once the last response has been written, so a final answer is never cut off.
    func closeConnection() {
        state = .closed
        queuedParts.removeAll()
        guard let pending = lastResponseEnd else {
            client?.close()
            return
        }
        pending.assumeIsolated().whenComplete { _ in
            self.client?.close()
        }
    }

    static func isTimeout(_ error: any Error) -> Bool {
        if let channelError = error as? ChannelError, case .connectTimeout = channelError { return true }
        if let connectionError = error as? NIOConnectionError {
            return connectionError.connectionErrors.contains { isTimeout($0.error) }
        }
        return false
    }
}
