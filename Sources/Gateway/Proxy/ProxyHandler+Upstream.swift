import NIOCore
import NIOHTTP1

/// The upstream side of an exchange: leasing a connection, sending the request, relaying the
/// answer, and what a connection that fails or closes means.
extension ProxyHandler: UpstreamResponseDelegate {
    /// Connects the exchange to its target (chosen now, unless a retry on a reused connection
    /// keeps it); a connect that fails is tried on another target, up to the upstream's `retries`.
    func connectUpstream(_ exchange: Exchange) {
        let targets = resources.targets(for: exchange.target)
        let pool: UpstreamPool
        if let chosen = exchange.pool {
            pool = chosen
        } else {
            guard let index = targets.choose(clientIP: exchange.clientAddress, tried: exchange.triedTargets) else {
                failExchange(exchange, with: .badGateway())
                return
            }
            // One target (the usual upstream) has nothing to retry on: no list to keep.
            if targets.pools.count > 1 { exchange.triedTargets.append(index) }
            pool = targets.pools[index]
            exchange.pool = pool
        }
        // A kept-alive connection that is idle now spares the callback and what it captures.
        if let connection = pool.leaseIdle() {
            connectionAcquired(connection, from: pool, for: exchange, targets: targets)
            return
        }
        pool.acquire { result in
            switch result {
            case .success(let connection):
                self.connectionAcquired(connection, from: pool, for: exchange, targets: targets)
            case .failure(let error):
                guard self.machine.isConnecting(exchange) else { return }
                if error is UpstreamBusy {
                    // The target is healthy, only full: no failure of its, no other target asked.
                    self.failExchange(exchange, with: .upstreamBusy())
                    return
                }
                pool.health.recordFailure()
                pool.health.metrics.recordFailure(in: self.resources.counts)
                // Nothing was sent: another target may take the request.
                if Self.mayTryAnotherTarget(exchange, targets) {
                    exchange.pool = nil
                    self.connectUpstream(exchange)
                    return
                }
                self.failExchange(exchange, with: Self.isTimeout(error) ? .gatewayTimeout() : .badGateway())
            }
        }
    }

    /// Whether the upstream's `retries` leave another target, not yet tried, for this request.
    private static func mayTryAnotherTarget(_ exchange: Exchange, _ targets: TargetPools) -> Bool {
        let tried = exchange.triedTargets.count
        return targets.pools.count > 1 && tried <= exchange.target.upstream.retries && tried < targets.pools.count
    }

    private func connectionAcquired(_ connection: UpstreamConnection, from pool: UpstreamPool, for exchange: Exchange, targets: TargetPools) {
        exchange.onReusedConnection = connection.hasBeenUsed
        let retryIfBroken = exchange.client.method.isIdempotent && Self.mayTryAnotherTarget(exchange, targets)
        switch machine.upstreamAcquired(connection, for: exchange, reused: connection.hasBeenUsed, retryIfBroken: retryIfBroken) {
        case .stale:
            pool.release(connection, reusable: true)
        case .startProxying(let keepBodyForRetry, let requestEnded):
            startProxying(exchange, on: connection, keepBodyForRetry: keepBodyForRetry, requestEnded: requestEnded)
        }
    }

    private func startProxying(_ exchange: Exchange, on connection: UpstreamConnection, keepBodyForRetry: Bool, requestEnded: Bool) {
        connection.handler.delegate = self
        exchange.upstreamStarted = exchange.upstreamStarted ?? .now()
        connection.handler.writeHead(exchange.upstreamRequest)
        for part in exchange.pendingParts { connection.handler.write(part) }
        if !keepBodyForRetry { exchange.pendingParts.removeAll() }
        resources.tickFlushes.flushAtEndOfTick(connection.handler)
        if requestEnded {
            startResponseClock(exchange)
        } else {
            armTimer(at: machine.lastClientActivity + idleTimeout)
        }
        resumeReadsIfAllowed()
    }

    /// A part of the answer came back: on its first, the request will not be sent again, and the
    /// body kept for that goes.
    private func answerArrived(for exchange: Exchange) {
        if machine.responseBytesArrived() { exchange.pendingParts.removeAll() }
    }

    func upstreamResponse(_ part: HTTPClientResponsePart) {
        guard case .proxying(let flight) = machine.state, let client else { return }
        let exchange = flight.exchange, connection = flight.connection
        answerArrived(for: exchange)
        switch part {
        case .head(let head):
            if head.status == .switchingProtocols {
                openTunnel(exchange, answer: head)
                return
            }
            let requestMethod = exchange.client.method, requestVersion = exchange.client.version
            let options = ConnectionOptions(head.headers)
            guard
                let closeClient = accept(
                    status: head.status,
                    upstreamKeepAlive: options.keepsAlive(head.version),
                    closeDelimited: ForwardedHeaders.needsCloseDelimiting(head, requestVersion: requestVersion, method: requestMethod),
                    for: exchange
                )
            else {
                return
            }
            writeResponseHead(
                ForwardedHeaders.clientResponse(
                    from: head,
                    options: options,
                    requestVersion: requestVersion,
                    requestMethod: requestMethod,
                    keepAlive: !closeClient,
                    rateLimitHeaders: exchange.rateLimitHeaders
                )
            )
        case .body(let buffer):
            client.write(.body(.byteBuffer(buffer)))
            if !client.isWritable {
                // Pause before flushing: the flush may drain the socket and report the channel
                // writable again at once, and that resume must come after this pause.
                connection.handler.pauseReads()
                client.flush()
            }
        case .end(let trailers):
            finishExchange(trailers: trailers)
        }
    }

    /// An HTTP/1.1 upstream's response head. It goes on as the bytes received, less what does
    /// not cross the hop, plus what the gateway adds: written as an HTTP/1.1 head, or encoded as
    /// an HTTP/2 header block, with no Strings built to be written out again. A WebSocket's 101
    /// takes the general way.
    func upstreamResponseHead(_ head: ReceivedResponseHead) {
        guard let exchange = machine.proxyingExchange, client != nil, head.status != .switchingProtocols else {
            upstreamResponse(.head(head.head))
            return
        }
        answerArrived(for: exchange)
        let requestMethod = exchange.client.method, requestVersion = exchange.client.version
        let options = head.options
        guard
            let closeClient = accept(
                status: head.status,
                upstreamKeepAlive: options.keepsAlive(head.version),
                closeDelimited: ForwardedHeaders.needsCloseDelimiting(head, requestVersion: requestVersion, method: requestMethod),
                for: exchange
            )
        else {
            return
        }
        beginResponse(status: head.status)
        // Matched in place: binding the whole client side first copied both of its references.
        switch client {
        case nil:
            return
        case .connection(let codec, _):
            codec.writeResponseHead { buffer in
                ForwardedHeaders.writeClientResponse(
                    from: head,
                    options: options,
                    requestVersion: requestVersion,
                    requestMethod: requestMethod,
                    keepAlive: !closeClient,
                    rateLimitHeaders: exchange.rateLimitHeaders,
                    into: &buffer
                )
            }
        case .stream(let stream):
            stream.writeHead { block in
                ForwardedHeaders.encodeClientResponse(from: head, options: options, rateLimitHeaders: exchange.rateLimitHeaders, into: &block)
            }
        }
    }

    /// A response head the exchange forwards, whichever way it came: the state machine told,
    /// the answer recorded.
    /// - Returns: whether the client connection closes after this answer; nil when the head is
    ///   not one the exchange forwards.
    private func accept(status: HTTPResponseStatus, upstreamKeepAlive: Bool, closeDelimited: Bool, for exchange: Exchange) -> Bool? {
        guard let closeClient = machine.responseHead(upstreamKeepAlive: upstreamKeepAlive, closeDelimited: closeDelimited) else {
            return nil
        }
        recordAnswer(status: status, for: exchange)
        return closeClient
    }

    /// The upstream's latency and status, for the metrics, the access log and the target's health.
    private func recordAnswer(status: HTTPResponseStatus, for exchange: Exchange) {
        // Each reached once: every step through a reference costs a retain and a release.
        let health = exchange.pool?.health
        if let started = exchange.upstreamStarted {
            let elapsed = (NIODeadline.now() - started).nanoseconds
            let answer = GatewayMetrics.UpstreamMetrics.Answer(statusCode: Int(status.code), nanoseconds: elapsed)
            let counts = resources.counts
            exchange.target.upstreamMetrics.record(answer, in: counts)
            health?.metrics.record(answer, in: counts)
            logEntry?.upstreamMilliseconds = Double(elapsed) / 1e6
        }
        switch status.code {
        case 502, 503, 504: health?.recordFailure()
        default: health?.recordSuccess()
        }
    }

    /// The upstream accepted a WebSocket handshake (its parser checked the 101 is for
    /// `websocket`): the 101 goes to the client, then the bytes the client sent meanwhile go
    /// upstream, and from now on both connections are one tunnel.
    private func openTunnel(_ exchange: Exchange, answer head: HTTPResponseHead) {
        let upstream = exchange.target.upstream
        let idleTimeout = TimeAmount(seconds: upstream.websocketIdleTimeoutSeconds ?? runtime.server.websocketIdleTimeoutSeconds)
        let now = NIODeadline.now()
        guard let opened = machine.tunnelOpened(idleTimeout: idleTimeout, now: now) else {
            // Not what this exchange is waiting for: the connection cannot be trusted any more.
            machine.upstreamConnection?.handler.close()
            upstreamClosed(error: nil)
            return
        }
        recordAnswer(status: head.status, for: exchange)
        writeResponseHead(
            ForwardedHeaders.tunnelResponse(
                from: head,
                rateLimitHeaders: exchange.rateLimitHeaders,
                overHTTP2: exchange.client.version.major == 2
            )
        )
        client?.flush()
        // The handshake's access-log line is written now; the tunnel may last for hours.
        appendLogEntry()
        endRequestInFlight()
        for bytes in opened.held { opened.connection.handler.writeTunnelBytes(bytes) }
        opened.connection.handler.flush()
        armTimer(at: now + idleTimeout)
        resumeReadsIfAllowed()
    }

    func upstreamTunnelBytes(_ bytes: ByteBuffer) {
        guard machine.upstreamTunnelBytes(now: .now()), let client, let connection = machine.tunnelConnection else { return }
        client.writeTunnelBytes(bytes)
        if !client.isWritable {
            // As for a response body: pause first, the flush may report writable at once.
            connection.handler.pauseReads()
            client.flush()
        }
    }

    /// The upstream's answer is complete: give the connection back first, then write the end.
    /// The order matters on HTTP/2, where writing the end may close the stream at once; a
    /// connection still held by the exchange then would be closed with it, not pooled.
    private func finishExchange(trailers: HTTPHeaders?) {
        guard let finish = machine.responseEnded() else { return }
        finish.exchange.releaseSlots()
        finish.exchange.pool?.release(finish.connection, reusable: finish.reusable)
        writeResponseEnd(trailers, closing: finish.closeClient)
        if finish.closeClient {
            closeConnection()
        } else {
            becomeIdle()
        }
    }

    func upstreamReadComplete() {
        client?.flushAtEndOfTick(resources.tickFlushes)
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeReadsIfAllowed() }
    }

    func upstreamClosed(error: (any Error)?) {
        switch machine.upstreamClosed() {
        case .none:
            break
        case .retry(let exchange):
            // Nothing was answered and the whole request is still here: send it again. A reused
            // connection the upstream had closed while idle goes to the same target; a fresh one
            // that broke is the target's failure, and another target gets the request.
            if !exchange.onReusedConnection {
                exchange.pool?.health.recordFailure()
                exchange.pool?.health.metrics.recordFailure(in: resources.counts)
                exchange.pool = nil
            }
            connectUpstream(exchange)
        case .abort(let exchange):
            // Half a response already went out: the only honest signal left is to cut the connection.
            exchange.releaseSlots()
            exchange.target.upstreamMetrics.recordFailure(in: resources.counts)
            exchange.pool?.health.recordFailure()
            exchange.pool?.health.metrics.recordFailure(in: resources.counts)
            endRequestInFlight()
            client?.close()
        case .fail(let exchange):
            exchange.pool?.health.recordFailure()
            exchange.pool?.health.metrics.recordFailure(in: resources.counts)
            failExchange(exchange, with: .badGateway())
        case .endTunnel(let exchange):
            exchange.releaseSlots()
            closeAfterTunnelBytes()
        }
    }
}
