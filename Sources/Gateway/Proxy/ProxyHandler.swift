import EventLoopSupport
import HTTP2Server
import NIOCore
import NIOHTTP1
import NIOPosix
import RateSync

/// The client side of the proxy, one per HTTP/1.1 connection or HTTP/2 stream (its ClientSide):
/// route, identify, limit, then stream the request to a leased upstream connection and the
/// response back.
///
/// A thin shell: every decision is ExchangeStateMachine's; this feeds it the connection's events
/// and performs the actions it returns (writes, reads, timers, pools, slots).
///
/// Backpressure: client reads are withheld while a request body waits for the limiter or the
/// upstream connection, while the upstream connection cannot take more, and while a pipelined
/// request waits; upstream reads are withheld whenever the client cannot take more. Nothing is
/// buffered whole. Reads are otherwise left on, so a keep-alive connection costs no epoll change
/// per request.
final class ProxyHandler: ChannelDuplexHandler, DrainableConnection, HTTP2StreamDelegate, StreamDeadlineHolder {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let resources: LoopResources
    /// This loop's access-log batch, when the access log is on.
    let accessLog: AccessLogBatch?
    /// The access-log line of the request being answered.
    var logEntry: AccessLogEntry?
    /// Whether the in-flight gauge counts a request of this connection now.
    var requestInFlight = false
    var isDraining: Bool { machine.draining }

    /// The configuration this loop serves now (replaced whole on reload).
    var runtime: GatewayRuntime { resources.runtime }
    /// The HTTP/1.1 connection or HTTP/2 stream this handler serves; nil once it has closed.
    var client: ClientSide?
    var machine: ExchangeStateMachine<Exchange, UpstreamConnection>
    private var readPending = false
    var upstreamNeedsFlush = false
    private var replayingQueue = false
    /// Whether a response head has gone out whose end has not.
    var responseInProgress = false
    /// The write of the last response's end when a close may follow it: a close waits for it, so
    /// no answer is cut short.
    private var lastResponseEnd: EventLoopFuture<Void>?
    /// The client connection's address, parsed once per connection.
    let peer: ClientPeer
    /// The peer's canonical text: most requests' identifier.
    var peerText: String { peer.text }
    /// Created on first use: a short-lived HTTP/2 stream may never need one.
    private var timer: ConnectionTimer?
    /// The request admitted for a slot ahead, until its time comes.
    var waiting: PendingWait?

    /// "https" when the client connection is TLS: what X-Forwarded-Proto tells the upstream.
    let scheme: String

    /// Set when this handler serves one HTTP/2 stream: the connection's timer for its streams'
    /// deadlines. (The connection's idleness is not the stream's business.)
    private let streamDeadlines: StreamDeadlines?

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
        machine = ExchangeStateMachine(isStream: streamDeadlines != nil, now: .now())
    }

    deinit {
        // The timer's task would outlive the handler its `onFire` holds unowned.
        timer?.cancel()
    }

    // MARK: channel lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        // Behind our HTTP/1.1 codec (ConnectionPipelines puts it there): answers go to the codec
        // directly, and context.read() from this handler passes through the codec to the socket.
        guard let codec = try? context.pipeline.syncOperations.handler(type: HTTP1ServerCodec.self), codec.proxy === self else {
            assertionFailure("a ProxyHandler on a connection sits behind its HTTP1ServerCodec")
            context.close(promise: nil)
            return
        }
        client = .connection(codec, context)
        armTimer(at: machine.lastClientActivity + idleTimeout)
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
    }

    /// Closes now if idle, else once the exchange in flight is over (its answer says so).
    func drain() {
        // Idle: nothing is on its way, and a lingering end would hold up the process's exit.
        if machine.drain() { closeConnection(lingering: false) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientClosed()
        context.fireChannelInactive()
    }

    /// The client sent its FIN: a close, or a half-close (TCP cannot tell them apart). As nginx
    /// does, what is in flight ends here, its slots and upstream connection given back at once
    /// (a client that closed must not hold them until its upstream answers); the answers already
    /// written (the gateway's own, made as the request was read) still go out before the close.
    func clientInputEnded() {
        clientClosed()
        closeConnection(lingering: false)
    }

    /// The client connection or stream is gone: give back what the exchange held. Idempotent.
    func clientClosed() {
        if let waiting {
            self.waiting = nil
            waiting.abandon()
        }
        release(machine.clientClosed())
        cancelTimer()
        logAbandonedRequest()
        endRequestInFlight()
        // A stream and its handler refer to each other; a connection's pipeline lets go by itself.
        if machine.isStream { client = nil }
    }

    /// Gives back the slots of an exchange and closes its upstream connection (never reused
    /// with half an exchange on it).
    private func release(_ held: (exchange: Exchange?, connection: UpstreamConnection?)) {
        held.exchange?.releaseSlots()
        held.connection?.handler.close()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // An error of the connection (a reset, say) ends it; unreadable requests come from the
        // codec through clientRequestFailed. The exchange in flight gives back its
        // slots and its upstream connection now: once the state says closed, the close that
        // follows has nothing left to release.
        clientClosed()
        context.close(promise: nil)
    }

    /// The client sent bytes that are no request (the parser reads nothing after them).
    func clientRequestFailed(_ error: HTTP1RequestError) {
        switch machine.requestFailed(error) {
        case .deferred, .none:
            break
        case .close:
            closeConnection()
        case .answer(let exchange, let connection):
            release((exchange, connection))
            answerUnreadableRequest(error)
        }
    }

    /// 431 for an oversized head, 400 for bytes that are not HTTP/1.1, 501 for a transfer
    /// coding we do not read, 505 for another HTTP version; then the connection closes. If an
    /// answer is already on its way, the connection simply closes.
    private func answerUnreadableRequest(_ error: HTTP1RequestError) {
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

    /// Not while pipelined requests are replayed: the codec may hold bytes read after them,
    /// which come before any new ones (it holds them only while a request is queued, and the
    /// replay reads on once it is over).
    private var readsAllowed: Bool {
        if replayingQueue { return false }
        switch machine.readGate {
        case .closed: return false
        case .clientWritable: return clientIsWritable
        case .upstreamWritable: return machine.upstreamConnection?.channel.isWritable ?? true
        }
    }

    /// Matched in place: binding the whole client side first copied both of its references.
    private var clientIsWritable: Bool {
        switch client {
        case .connection(let codec, _)?: return codec.isWritable
        case .stream(let stream)?: return stream.isWritable
        case nil: return false
        }
    }

    /// Whether a pipelined request waits behind the one in flight (or for the client to take
    /// its answers): the codec then holds the bytes after it unparsed.
    var hasQueuedRequests: Bool { machine.hasQueuedParts }

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
        let writable = clientIsWritable
        if let deadline = machine.clientWritabilityChanged(writable: writable, now: .now(), sendTimeout: sendTimeout) {
            armTimer(at: deadline)
        }
        guard writable else { return }
        machine.upstreamConnection?.handler.resumeReads()
        if machine.isIdle, machine.hasQueuedParts, !replayingQueue {
            serveQueuedRequests()
        } else {
            resumeReadsIfAllowed()
        }
    }

    // MARK: request parts

    /// A request part from the HTTP/1.1 codec, whose parser read the head's fields.
    func receive(_ part: consuming ClientRequestPart) {
        perform(machine.receive(part, now: .now()))
    }

    /// A request part from an HTTP/2 stream: its head's fields are read here, in one pass.
    func receive(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head): receive(ClientRequestPart.head(ClientRequest(head)))
        case .body(let body): receive(ClientRequestPart.body(body))
        case .end(let trailers): receive(ClientRequestPart.end(trailers))
        }
    }

    /// Bytes the client sent after a WebSocket handshake (the codec's parser reads no HTTP after
    /// one).
    func receiveTunnelBytes(_ bytes: ByteBuffer) {
        switch machine.receiveTunnelBytes(bytes, now: .now()) {
        case .forward(let connection):
            connection.handler.writeTunnelBytes(bytes)
            upstreamNeedsFlush = true
        case .held:
            break
        case .close:
            closeConnection()
        }
    }

    /// Closes the client once the tunnel's last bytes to it are written.
    func closeAfterTunnelBytes() {
        guard let client else { return }
        let written = client.eventLoop.makePromise(of: Void.self)
        client.finishTunnel(promise: written)
        lastResponseEnd = written.futureResult
        closeConnection()
    }

    /// An HTTP/2 client ended its tunnel's stream (END_STREAM): the tunnel closes, and the
    /// stream ends on this side too once the upstream connection is let go.
    func clientEndedTunnel() {
        // What the client sent just before its end goes out before the upstream connection closes.
        flushUpstreamIfNeeded()
        let open = machine.tunnelConnection != nil
        release(machine.clientClosed())
        cancelTimer()
        endRequestInFlight()
        guard open else {
            // Before the tunnel opened: nothing to end gracefully.
            client?.close()
            return
        }
        client?.finishTunnel(promise: nil)
    }

    /// The end of a batch of reads: what was forwarded leaves for the upstream in one flush, at
    /// the end of the loop's tick.
    func clientReadComplete() {
        flushUpstreamIfNeeded(atEndOfTick: true)
    }

    /// - Parameter atEndOfTick: with the loop's other flushes (TickFlushes), rather than now.
    private func flushUpstreamIfNeeded(atEndOfTick: Bool = false) {
        guard upstreamNeedsFlush, let connection = machine.upstreamConnection else { return }
        upstreamNeedsFlush = false
        if atEndOfTick {
            resources.tickFlushes.flushAtEndOfTick(connection.handler)
        } else {
            connection.handler.flush()
        }
    }

    /// A request part as its upstream gets it: trailers filtered by the exchange's request
    /// (`UpstreamRequest.onward`), anything else as it is, without touching the exchange.
    private func onward(_ part: HTTPClientRequestPart, of exchange: @autoclosure () -> Exchange?) -> HTTPClientRequestPart {
        guard case .end(_?) = part, let exchange = exchange() else { return part }
        return exchange.upstreamRequest.onward(part)
    }

    private func perform(_ action: ExchangeStateMachine<Exchange, UpstreamConnection>.PartAction) {
        switch action {
        case .begin(let request):
            begin(request)
        case .queued, .none:
            break
        case .buffer(let exchange, let part):
            exchange.pendingParts.append(onward(part, of: exchange))
        case .forward(let connection, let part, let whole, let keepForRetry):
            let onwardPart = onward(part, of: machine.proxyingExchange)
            // Only an end is kept, and only before any answer: `whole` is then the exchange. Only
            // a chunked body's end has bytes to send again (a last chunk, perhaps trailers);
            // another is its head's alone, and keeping it would cost an array per request.
            if keepForRetry, let whole, case .chunked = whole.upstreamRequest.framing { whole.pendingParts.append(onwardPart) }
            if connection.handler.write(onwardPart) { upstreamNeedsFlush = true }
            if let whole { startResponseClock(whole) }
        case .discardEnded:
            becomeIdle()
        case .close:
            closeConnection()
        }
    }

    /// Replays pipelined requests once the connection is idle again.
    private func replayQueuedParts() {
        guard !replayingQueue else { return }
        replayingQueue = true
        defer { replayingQueue = false }
        while let action = machine.nextQueuedPart(clientWritable: clientIsWritable) { perform(action) }
        if !machine.hasQueuedParts { client?.parseHeldBytes() }
        flushUpstreamIfNeeded()
    }

    // MARK: deadlines

    /// The whole request is with the upstream: its answer must start within the route's timeout.
    func startResponseClock(_ exchange: Exchange) {
        let deadline = NIODeadline.now() + .milliseconds(Int64(exchange.target.upstream.responseTimeoutMs))
        machine.responseClockStarted(at: deadline)
        armTimer(at: deadline)
    }

    func armTimer(at deadline: NIODeadline) {
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

    var idleTimeout: TimeAmount {
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
        switch machine.deadlineReached(now: .now(), idleTimeout: idleTimeout, sendTimeout: sendTimeout) {
        case .none:
            break
        case .rearm(let deadline):
            armTimer(at: deadline)
        case .closeClient(let exchange, let connection):
            release((exchange, connection))
            endRequestInFlight()
            cancelTimer()
            client?.close()
        case .upstreamTimedOut(let exchange, let connection, let next):
            connection.handler.close()
            exchange.pool?.health.recordFailure()
            exchange.pool?.health.metrics.recordFailure(in: resources.counts)
            if let next { armTimer(at: next) }
            failExchange(exchange, with: .gatewayTimeout())
        }
    }

    // MARK: idleness and local answers

    func becomeIdle() {
        switch machine.becomeIdle(now: .now()) {
        case .streamDone:
            cancelTimer()
        case .close:
            closeConnection()
        case .idle:
            if client?.readsNoMoreRequests == true {
                // A WebSocket handshake was answered without a tunnel: what follows is not HTTP.
                closeConnection()
                return
            }
            armTimer(at: machine.lastClientActivity + idleTimeout)
            serveQueuedRequests()
        }
    }

    /// An idle connection serves the pipelined requests that may go now, then answers bytes that
    /// were no request behind them, or reads on.
    private func serveQueuedRequests() {
        replayQueuedParts()
        if let error = machine.afterQueue() {
            answerUnreadableRequest(error)
            return
        }
        resumeReadsIfAllowed()
    }

    /// The upstream let this exchange down (refused, timed out, reset before answering): count
    /// it, give the limiter slots back, and answer the client.
    func failExchange(_ exchange: Exchange, with response: LocalResponse) {
        exchange.releaseSlots()
        exchange.target.upstreamMetrics.recordFailure(in: resources.counts)
        answerLocally(response, for: exchange)
    }

    func answerLocally(_ response: LocalResponse, for exchange: Exchange) {
        let progress = machine.progress
        answerLocally(
            response,
            to: exchange.client,
            requestEnded: progress?.requestEnded ?? true,
            continueSent: progress?.continueSent ?? false,
            close: progress?.closeAfterResponse ?? false
        )
    }

    /// - Parameter close: whether the connection must close after this answer whatever the
    ///   request asked.
    func answerLocally(
        _ response: LocalResponse,
        to request: ClientRequest,
        requestEnded: Bool,
        continueSent: Bool = false,
        close mustClose: Bool = false
    ) {
        guard client != nil else { return }
        // A client that sent `Expect: 100-continue` and was never told to continue may never
        // send its body: the connection cannot carry another request, so it closes.
        let bodyWithheld = !requestEnded && request.fields.expectsContinue && !continueSent
        // (On HTTP/2 a request is one stream: its answer ends the stream, never the connection.)
        let close = machine.localAnswerCloses(
            keepAlive: request.fields.options.keepsAlive(request.version),
            bodyWithheld: bodyWithheld,
            mustClose: mustClose,
            unreadBody: requestEnded ? nil : request.fields.framing(version: request.version)
        )
        writeLocal(response, version: request.version, close: close, grpc: LocalResponse.isGRPC(request), headOnly: request.method == .HEAD)
        switch machine.answeredLocally(requestEnded: requestEnded, bodyWithheld: bodyWithheld, close: close, now: .now()) {
        case .becomeIdle:
            becomeIdle()
        case .close:
            closeConnection()
        case .discard:
            armTimer(at: machine.lastClientActivity + idleTimeout)
            resumeReadsIfAllowed()
        }
    }

    // MARK: writes

    /// - Parameter headOnly: the answer is to a HEAD: its head says the body's length, and no
    ///   body follows (a client reads none, so bytes after the head would read as the next
    ///   answer, over HTTP/1.1, or break the stream's length, over HTTP/2).
    private func writeLocal(_ response: LocalResponse, version: HTTPVersion, close: Bool, grpc: Bool = false, headOnly: Bool = false) {
        if grpc {
            writeResponseHead(response.grpcHead())
            logEntry?.status = Int(response.status.code)
            writeResponseEnd(response.grpcTrailers(), closing: true)
            return
        }
        writeResponseHead(response.head(version: version, close: close))
        if !headOnly { client?.write(.body(.byteBuffer(ByteBuffer(string: response.body)))) }
        // A local answer may be followed by a close after the rest of the body is discarded.
        writeResponseEnd(nil, closing: true)
    }

    func writeResponseHead(_ head: HTTPResponseHead) {
        beginResponse(status: head.status)
        client?.write(.head(head))
    }

    /// A response head is about to go out.
    func beginResponse(status: HTTPResponseStatus) {
        responseInProgress = true
        logEntry?.status = Int(status.code)
    }

    /// The response's end is flushed at once, not with the loop's other flushes at the end of
    /// its tick (TickFlushes): an answer read early in a busy tick otherwise waited for every
    /// request read after it in that tick, which is where a loaded gateway's slowest answers
    /// came from. (Requests to upstreams still wait for the tick's end: flushed at once, they
    /// bought no latency.)
    /// - Parameter closing: whether the connection may close after this answer: only then is the
    ///   write's completion kept (a close waits for it), sparing a kept-alive connection a promise
    ///   per response.
    func writeResponseEnd(_ trailers: HTTPHeaders?, closing: Bool) {
        guard let client else { return }
        let trailers = trailers.map(ForwardedHeaders.trailersForClient)
        responseInProgress = false
        if closing {
            let promise = client.eventLoop.makePromise(of: Void.self)
            client.write(.end(trailers), promise: promise)
            lastResponseEnd = promise.futureResult
        } else {
            client.write(.end(trailers))
        }
        client.flush()
        appendLogEntry()
        endRequestInFlight()
    }

    /// A request whose connection or stream ended before its answer was written whole still
    /// gets its line: with the status that went out, or, if none did, 499 (nginx's "client
    /// closed request").
    private func logAbandonedRequest() {
        guard logEntry != nil else { return }
        if logEntry?.status == 0 { logEntry?.status = Self.clientClosedRequest }
        appendLogEntry()
    }

    private static let clientClosedRequest = 499

    func appendLogEntry() {
        // Moved out (`take`), not copied: a copy retained each of the entry's Strings, and
        // clearing the original then released them again.
        if let accessLog, let entry = logEntry.take() {
            accessLog.append(entry)
        }
    }

    func endRequestInFlight() {
        guard requestInFlight else { return }
        requestInFlight = false
        resources.requestsInFlight -= 1
    }

    /// Closes once the last response has been written, so a final answer is never cut off.
    func closeConnection(lingering: Bool = true) {
        machine.closing()
        guard let pending = lastResponseEnd else {
            client?.close(lingering: lingering)
            return
        }
        pending.assumeIsolated().whenComplete { _ in
            self.client?.close(lingering: lingering)
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
