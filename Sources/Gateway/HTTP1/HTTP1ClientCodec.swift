import EventLoopSupport
import NIOCore
import NIOHTTP1

/// The upstream connection's codec. Requests go out in the framing their head states and nothing
/// else: exactly `Content-Length` bytes, chunked, or no body at all. Body bytes beyond what the
/// framing allows are never written, and a body that ends short of its length closes the
/// connection (the proxy never does either; this is the last guard): the upstream can never read
/// a body's excess as another request, nor the next request as a body's missing rest.
///
/// Responses are read by HTTP1Parser, which knows where each one ends: a byte that arrives after
/// a response and before the next request (an upstream answering twice, or half a head left
/// behind) is an error that closes the connection, so it can never become the answer to the next
/// exchange that leases it. A request counts as sent once it is flushed, not when it is written:
/// flushes wait for the end of the loop's tick, and bytes read in between (a second answer that
/// arrived on an idle connection in the same tick as the client request that leased it) cannot
/// be an answer to a request the upstream has not seen.
final class HTTP1ClientCodec: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = ByteBuffer

    private var parser: HTTP1Parser
    private var failed = false
    /// The request written since the last flush, whose answer the parser expects once it is
    /// flushed.
    private var unflushedRequest: (method: HTTPMethod, tunnel: Bool)?
    /// Given the response parts directly (never boxed as `NIOAny` through the pipeline). Let go
    /// when the codec is removed.
    var upstream: UpstreamHandler?
    private var context: ChannelHandlerContext?

    init(maxHeadBytes: Int) {
        parser = HTTP1Parser(role: .response, maxHeadBytes: maxHeadBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        upstream = nil
    }


    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        // The instance forms of NIO's wrapping and unwrapping, and NIOAny's own initialiser for
        // writes: the static forms were called unspecialised, casting every buffer dynamically.
        var buffer = unwrapInboundIn(data)
        do {
            // A switch on the parser's result: `while case .part(let part) = ...` copied the
            // whole result, then destroyed it. The part is handed on, not copied (`consuming`).
            parsing: while true {
                switch try parser.advance(&buffer) {
                case .part(let part):
                    // Bytes after a response's end, with no request sent since: the parser
                    // refuses them on its next step, but the end, handed on first, may already
                    // give the connection back; it must not be leased again in between.
                    if buffer.readableBytes > 0, case .end = part { upstream?.receivedBytesOutOfTurn = true }
                    deliver(part)
                case .needsBytes: break parsing
                }
            }
        } catch {
            fail(context: context, error)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // An upstream with Nagle's algorithm on that writes its answer's head and then its body
        // (Python's http.server does) holds the body until the head is acknowledged; the kernel
        // delays that acknowledgement (40 ms) on a kept-alive connection, this side having
        // nothing to send until the answer is whole. Only a read that ends inside a body pays.
        if parser.isWithinBody {
            context.channel.acknowledgeReceivedBytesAtOnce()
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !failed {
            do {
                if let part = try parser.finish() {
                    deliver(part)
                }
            } catch {
                failed = true
                context.fireErrorCaught(error)
            }
        }
        context.fireChannelInactive()
    }

    /// Hands a part of the response to the connection's handler (a response parser never reads
    /// a request head).
    private func deliver(_ part: consuming HTTP1Parser.Part) {
        switch part {
        case .responseHead(let head): upstream?.receivedHead(head)
        case .body(let body): upstream?.received(.body(body))
        case .end(let trailers): upstream?.received(.end(trailers))
        case .tunnel(let bytes): upstream?.receivedTunnelBytes(bytes)
        case .requestHead: break
        }
    }

    private func fail(context: ChannelHandlerContext, _ error: HTTP1RequestError) {
        failed = true
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private enum Body {
        case none
        case length(remaining: Int)
        case chunked
    }

    private var body = Body.none
    private var headBuffer = ReusableHeadBuffer()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        _ = write(Self.unwrapOutboundIn(data), context: context, promise: promise)
    }

    /// Writes a request part (the upstream handler's direct way in).
    /// - Returns: whether anything went to the channel (the end of a body framed by its length,
    ///   or of none, writes nothing, and needs no flush).
    @discardableResult
    func write(_ part: HTTPClientRequestPart, promise: EventLoopPromise<Void>?) -> Bool {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return false
        }
        return write(part, context: context, promise: promise)
    }

    /// Writes a proxied request's head, straight from the client's fields. A WebSocket
    /// handshake's opens a tunnel when the upstream answers it 101.
    func writeHead(_ request: UpstreamRequest, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        unflushedRequest = (request.method, request.opensTunnel)
        var buffer = headBuffer.take(context.channel.allocator)
        request.write(into: &buffer)
        expectBody(framedBy: request.framing)
        context.write(NIOAny(buffer), promise: promise)
        headBuffer.keep(buffer)
    }

    func flush(context: ChannelHandlerContext) {
        if let request = unflushedRequest {
            unflushedRequest = nil
            parser.expectResponse(to: request.method, tunnel: request.tunnel)
        }
        context.flush()
    }

    private func expectBody(framedBy framing: RequestBodyFraming) {
        switch framing {
        case .none: body = .none
        case .length(let length): body = .length(remaining: length)
        case .chunked: body = .chunked
        }
    }

    /// Writes bytes of an open WebSocket tunnel, as they are: only once the upstream's 101 has
    /// opened it (before, they would be read as requests nothing routed).
    func writeTunnelBytes(_ bytes: ByteBuffer) {
        guard let context else { return }
        guard parser.isTunnel else {
            context.fireErrorCaught(UnframedBody())
            context.close(promise: nil)
            return
        }
        context.write(NIOAny(bytes), promise: nil)
    }

    private func write(
        _ part: HTTPClientRequestPart,
        context: ChannelHandlerContext,
        promise: EventLoopPromise<Void>?
    ) -> Bool {
        switch part {
        case .head(let head):
            unflushedRequest = (head.method, false)
            var buffer = headBuffer.take(context.channel.allocator)
            expectBody(framedBy: HTTP1Writer.writeRequestHead(head, into: &buffer))
            context.write(NIOAny(buffer), promise: promise)
            headBuffer.keep(buffer)
            return true
        case .body(.byteBuffer(let part)):
            switch body {
            case .length(let remaining) where part.readableBytes <= remaining:
                body = .length(remaining: remaining - part.readableBytes)
                context.write(NIOAny(part), promise: promise)
            case .chunked:
                HTTP1Writer.writeChunk(part, context: context, promise: promise)
            case .none, .length:
                promise?.fail(UnframedBody())
                context.close(promise: nil)
            }
            return true
        case .body(.fileRegion):
            promise?.fail(ChannelError.operationUnsupported)
            return false
        case .end(let trailers):
            if case .length(let remaining) = body, remaining > 0 {
                body = .none
                promise?.fail(UnframedBody())
                context.close(promise: nil)
                return false
            }
            let chunked: Bool
            if case .chunked = body { chunked = true } else { chunked = false }
            HTTP1Writer.writeEnd(trailers: trailers, chunked: chunked, context: context, promise: promise)
            body = .none
            // A body framed by its length, or none, ends without a byte (only a promise is passed on).
            return chunked || promise != nil
        }
    }

    /// Body bytes that the request's framing has no room for, or a body that ends short of it.
    struct UnframedBody: Error {}
}
