import EventLoopSupport
import NIOCore
import NIOHTTP1

/// The HTTP/1.1 client connection's codec: bytes in, request parts out (HTTP1Parser),
/// response parts in, bytes out.
///
/// A response's body is chunked exactly when its head says `Transfer-Encoding: chunked`, else
/// written as it comes: the proxy sets the framing headers of every head it writes (a length,
/// chunked, or, for HTTP/1.0 clients, the connection's close), and writes no body where none may
/// be (HEAD, 1xx, 204, 304).
///
/// A request error is handed over after the parts read before it; the parser then ignores the
/// rest of the connection, so nothing after a bad request is buffered.
///
/// A head the proxy encodes itself is held until what follows it: a body part of at most
/// `joinedBodyLimit` bytes and a chunked body's end are appended to it, and it goes to the
/// channel before anything else is written, flushed or closed. A small response is then one
/// write, not two or three, each of which costs a pass down the pipeline and an entry in the
/// socket's queue.
///
/// Bytes read after a pipelined request that had to wait (behind the one in flight, or for a
/// client that takes no answers) are held as they came, and parsed once the proxy has served
/// that request (`parseHeldBytes`): a read of many small requests then costs the bytes sent, not
/// a parsed request each, several times as large, all waiting in the proxy's queue.
///
/// The connection's ProxyHandler is called directly both ways (its parts never cross the
/// pipeline boxed as `NIOAny`, which cost a fifth of a proxied request's instructions); it still
/// sits behind this codec for the channel's own events.
final class HTTP1ServerCodec: ChannelDuplexHandler, TickFlushable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = ByteBuffer

    private var parser: HTTP1Parser
    private var responseChunked = false
    /// A response head written but not yet handed to the channel, with what joined it.
    private var heldHead: ByteBuffer?
    private var headBuffer = ReusableHeadBuffer()
    /// The largest body part copied into a held head; a larger one is written as it is.
    static let joinedBodyLimit = 16 * 1024
    private var failed = false
    /// Bytes read but not parsed yet: they follow a request the proxy queued.
    private var unparsed: ByteBuffer?
    /// Given the requests and asked for answers directly. Let go when the codec is removed.
    var proxy: ProxyHandler?
    private(set) var context: ChannelHandlerContext?
    /// The channel's writability as it last announced it (it announces every change as it
    /// happens, inside the write or flush that made it): asked after every read, and asking the
    /// channel costs a call through its pipeline.
    private(set) var isWritable = true

    init(maxHeadBytes: Int) {
        parser = HTTP1Parser(role: .request, maxHeadBytes: maxHeadBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isWritable = context.channel.isWritable
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        proxy = nil
        heldHead = nil
        unparsed = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        // The instance forms of NIO's wrapping and unwrapping, and NIOAny's own initialiser for
        // writes: the static forms were called unspecialised, casting every buffer dynamically.
        var buffer = unwrapInboundIn(data)
        if var held = unparsed {
            unparsed = nil
            held.writeBuffer(&buffer)
            buffer = held
        }
        parse(&buffer)
    }

    /// Parses the bytes held after a queued request, now that the proxy has served it.
    func parseHeldBytes() {
        guard !failed, var buffer = unparsed else { return }
        unparsed = nil
        parse(&buffer)
    }

    private func parse(_ buffer: inout ByteBuffer) {
        do {
            // A switch on the parser's result, each part's payload bound in it: `while case
            // .part(let part) = ...` copied the whole result, then destroyed it.
            parsing: while true {
                switch try parser.advance(&buffer) {
                case .part(.requestHead(let request)):
                    guard let proxy else { break }
                    proxy.receive(.head(request))
                    if proxy.hasQueuedRequests, buffer.readableBytes > 0 {
                        unparsed = buffer
                        break parsing
                    }
                case .part(.body(let body)): proxy?.receive(ClientRequestPart.body(body))
                case .part(.end(let trailers)): proxy?.receive(ClientRequestPart.end(trailers))
                case .part(.tunnel(let bytes)): proxy?.receiveTunnelBytes(bytes)
                case .part(.responseHead): break
                case .needsBytes: break parsing
                }
            }
        } catch {
            failed = true
            proxy?.clientRequestFailed(error)
        }
    }

    /// Whether the connection carries a WebSocket's bytes now (or will, once its handshake is
    /// answered): no further request can come on it.
    var readsNoMoreRequests: Bool { parser.isTunnel }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A client with Nagle's algorithm on that writes a request's head and then its body (or
        // a body in several writes) holds each small write until the one before is acknowledged;
        // on a kept-alive connection the kernel delays that acknowledgement (40 ms) for want of
        // an answer to carry it, and there is none until the body has come. Only a read that
        // ends inside a body pays the call: a request whose body came whole with its head never.
        if parser.isWithinBody {
            context.channel.acknowledgeReceivedBytesAtOnce()
        }
        proxy?.clientReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        proxy?.clientInputEnded()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        write(Self.unwrapOutboundIn(data), context: context, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        releaseHeldHead(context: context)
        context.flush()
    }

    /// The flush the proxy asked for at the end of its loop's tick (TickFlushes).
    func flushNow() {
        guard let context else { return }
        flush(context: context)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // What was written waits for a flush at the end of the tick at most (TickFlushes); a
        // close would drop it. Everything written here was meant to be sent.
        releaseHeldHead(context: context)
        context.flush()
        context.close(mode: mode, promise: promise)
    }

    /// Hands a held head, and what joined it, to the channel.
    private func releaseHeldHead(context: ChannelHandlerContext) {
        guard let head = heldHead else { return }
        heldHead = nil
        context.write(NIOAny(head), promise: nil)
        headBuffer.keep(head)
    }

    /// Writes a response part (the proxy's direct way in).
    func write(_ part: HTTPServerResponsePart, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        write(part, context: context, promise: promise)
    }

    /// Writes a response head the proxy encodes itself (an upstream's, forwarded as received).
    /// - Parameter encode: writes the head; returns whether the body that follows is chunked.
    func writeResponseHead(encodedBy encode: (inout ByteBuffer) -> Bool) {
        guard let context else { return }
        releaseHeldHead(context: context)
        var buffer = headBuffer.take(context.channel.allocator)
        responseChunked = encode(&buffer)
        heldHead = buffer
    }

    /// Writes bytes of an open WebSocket tunnel, as they are.
    func writeTunnelBytes(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        releaseHeldHead(context: context)
        context.write(NIOAny(bytes), promise: promise)
    }

    private func write(_ part: HTTPServerResponsePart, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if var held = heldHead {
            // Taken out while it grows, so that its storage stays uniquely referenced.
            heldHead = nil
            if join(part, to: &held) {
                if let promise {
                    context.write(NIOAny(held), promise: promise)
                    headBuffer.keep(held)
                } else {
                    heldHead = held
                }
                return
            }
            context.write(NIOAny(held), promise: nil)
            headBuffer.keep(held)
        }
        switch part {
        case .head(let head):
            var buffer = headBuffer.take(context.channel.allocator)
            let framing = HTTP1Writer.writeResponseHead(head, into: &buffer)
            if head.status.code >= 200 { responseChunked = framing == .chunked }
            context.write(NIOAny(buffer), promise: promise)
            headBuffer.keep(buffer)
        case .body(.byteBuffer(let body)):
            if responseChunked {
                HTTP1Writer.writeChunk(body, context: context, promise: promise)
            } else {
                context.write(NIOAny(body), promise: promise)
            }
        case .body(.fileRegion):
            promise?.fail(ChannelError.operationUnsupported)
        case .end(let trailers):
            HTTP1Writer.writeEnd(trailers: trailers, chunked: responseChunked, context: context, promise: promise)
            responseChunked = false
        }
    }
}

extension HTTP1ServerCodec {
    /// Appends a part to a held head when it is a small body part or a body's end.
    /// - Returns: whether it did.
    private func join(_ part: HTTPServerResponsePart, to held: inout ByteBuffer) -> Bool {
        switch part {
        case .body(.byteBuffer(var body)) where body.readableBytes <= Self.joinedBodyLimit:
            // An empty part writes nothing (an empty chunk would read as the last one).
            guard body.readableBytes > 0 else { return true }
            if responseChunked {
                HTTP1Writer.writeChunkSize(body.readableBytes, into: &held)
                held.writeBuffer(&body)
                held.writeStaticString("\r\n")
            } else {
                held.writeBuffer(&body)
            }
            return true
        case .end(let trailers):
            if responseChunked {
                HTTP1Writer.writeLastChunk(trailers: trailers, into: &held)
                responseChunked = false
            }
            return true
        case .head, .body:
            return false
        }
    }
}
