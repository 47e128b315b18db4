import NIOCore
import NIOHTTP1

/// Cuts the admin listener's bytes into request parts with the proxy's own HTTP/1.1 parser, so
/// that an admin connection is held to the proxy's bounds: a head (whitespace included) or a
/// trailer section at most `max_header_bytes`, a chunk line at most 4 KiB, a body consumed as it
/// comes. NIO's decoder keeps every byte of a head until its end, and skips the whitespace before
/// a value without counting it, so a value preceded by endless spaces was held whole.
///
/// One request at a time: once a request has ended, the bytes after it wait unparsed, and no more
/// are read, until its answer has been written and the socket takes more. Answers are so in the
/// order of their requests, and a client that sends requests without reading the answers stops
/// being read instead of having its answers pile up (NIO's pipelining handler answered every
/// request a read brought, whatever the socket took).
///
/// A request it cannot read is told on as its error (AdminHandler answers it as the proxy would,
/// and closes); every later byte is dropped. A WebSocket handshake is read
/// as a request that closes its connection, since no HTTP follows one.
final class AdminRequestDecoder: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var parser: HTTP1Parser
    /// Why the bytes could not be read: once set, nothing more is parsed or read.
    private(set) var failure: HTTP1RequestError?
    /// Bytes read after a request's end, parsed once it has been answered.
    private var unparsed: ByteBuffer?
    /// A request has ended and its answer has not.
    private var answering = false
    /// A read was asked for while this one waited.
    private var readHeldBack = false

    init(maxHeadBytes: Int) {
        parser = HTTP1Parser(role: .request, maxHeadBytes: maxHeadBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        if unparsed != nil {
            unparsed!.writeBuffer(&buffer)
        } else {
            unparsed = buffer
        }
        parseWhileIdle(context: context)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let ended: Bool
        if case .end = Self.unwrapOutboundIn(data) { ended = true } else { ended = false }
        context.write(data, promise: promise)
        if ended {
            answering = false
            parseWhileIdle(context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        parseWhileIdle(context: context)
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        guard isIdle(context) else {
            readHeldBack = true
            return
        }
        context.read()
    }

    /// No answer is pending, nothing waits unparsed and the socket takes more.
    private func isIdle(_ context: ChannelHandlerContext) -> Bool {
        !answering && failure == nil && (unparsed?.readableBytes ?? 0) == 0 && context.channel.isWritable
    }

    /// Hands on the parts of what was read, up to the end of a request (or a failure), while no
    /// answer is pending and the socket takes more; then lets a held-back read go.
    private func parseWhileIdle(context: ChannelHandlerContext) {
        while !answering, failure == nil, context.channel.isWritable {
            // Even with nothing left unparsed: the end of a body that was read whole, say, is
            // a part the bytes already brought.
            var buffer = unparsed ?? ByteBuffer()
            unparsed = nil
            let part: HTTP1Parser.Part?
            do {
                part = try parser.next(&buffer)
            } catch {
                failure = error
                context.fireErrorCaught(error)
                return
            }
            // None yet: the parser keeps what it was given, up to its bounds.
            guard let part else { break }
            if buffer.readableBytes > 0 { unparsed = buffer }
            switch part {
            case .requestHead(let request):
                var head = request.head
                if Self.isHandshake(request) {
                    head.headers.replaceOrAdd(name: "connection", value: "close")
                }
                context.fireChannelRead(Self.wrapInboundOut(.head(head)))
            case .body(let body):
                context.fireChannelRead(Self.wrapInboundOut(.body(body)))
            case .end(let trailers):
                answering = true
                context.fireChannelRead(Self.wrapInboundOut(.end(trailers)))
            case .tunnel, .responseHead:
                // Bytes after a handshake, whose answer closes the connection: not HTTP.
                break
            }
        }
        if readHeldBack, isIdle(context) {
            readHeldBack = false
            context.read()
        }
    }

    private static func isHandshake(_ request: ClientRequest) -> Bool {
        WebSocketUpgrade.opensTunnel(request, framing: request.fields.framing(version: request.version))
    }
}
