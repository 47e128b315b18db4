import NIOCore
import NIOHTTP1

/// Events of the upstream connection the current exchange leased.
extension ProxyHandler: UpstreamResponseDelegate {
    func upstreamResponse(_ part: HTTPClientResponsePart) {
        guard case .proxying(let exchange, let connection) = state, let client else { return }
        if exchange.mayRetryOnFreshConnection {
            exchange.mayRetryOnFreshConnection = false
            exchange.pendingParts.removeAll()
        }
        switch part {
        case .head(let head) where head.status == .switchingProtocols:
            // The upgrade headers never reached the upstream: a 101 is an answer out of turn.
            connection.handler.close()
            failExchange(exchange, with: .badGateway())
        case .head(let head):
            exchange.responseStarted = true
            exchange.upstreamReusable = head.isKeepAlive
            if let started = exchange.upstreamStarted {
                let elapsed = (NIODeadline.now() - started).nanoseconds
                exchange.target.upstreamMetrics.record(statusCode: Int(head.status.code), nanoseconds: elapsed)
                logEntry?.upstreamMilliseconds = Double(elapsed) / 1e6
            }
            let clientHead = exchange.clientHead
            let closeAfter = exchange.closeClientAfterResponse || isDraining || !exchange.clientKeepAlive
                || ForwardedHeaders.needsCloseDelimiting(head, requestVersion: clientHead.version, method: clientHead.method)
            exchange.closeClientAfterResponse = closeAfter
            writeResponseHead(
                ForwardedHeaders.clientResponse(
                    from: head,
                    requestVersion: clientHead.version,
                    requestMethod: clientHead.method,
                    keepAlive: !closeAfter,
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
            finishExchange(exchange, connection, trailers: trailers)
        }
    }

    func upstreamReadComplete() {
        client?.flush()
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeReadsIfAllowed() }
    }

    func upstreamClosed(error: (any Error)?) {
        guard case .proxying(let exchange, _) = state else { return }
        if exchange.mayRetryOnFreshConnection {
            // The upstream closed an idle kept-alive connection just as we reused it: nothing was
            // answered and the whole request is still here, so send it again on a new connection.
            exchange.mayRetryOnFreshConnection = false
            state = .connecting(exchange)
            connectUpstream(exchange)
            return
        }
        if exchange.responseStarted {
            // Half a response already went out: the only honest signal left is to cut the connection.
            exchange.releaseSlots()
            exchange.target.upstreamMetrics.recordFailure()
            state = .closed
            client?.close()
        } else {
            failExchange(exchange, with: .badGateway())
        }
    }
}
