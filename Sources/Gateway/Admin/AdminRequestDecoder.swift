import NIOCore
import NIOHTTP1

/// Cuts the admin listener's bytes into request parts with the proxy's own HTTP/1.1 parser, so
/// that an admin connection is held to the proxy's bounds: a head (whitespace included) or a
/// trailer section at most `max_header_bytes`, a chunk line at most 4 KiB, a body consumed as it
/// comes. NIO's decoder keeps every byte of a head until its end, and skips the whitespace before
/// a value without counting it, so a value preceded by endless spaces was held whole.
///
/// A request it cannot read is kept in `failure` and told on as an `HTTPParserError`, the error
/// `HTTPServerPipelineHandler` holds back until the answers before it are written; AdminHandler
/// then answers it as the proxy would, and closes. Every later byte is dropped. A WebSocket handshake is read as a request that closes its
/// connection, since no HTTP follows one.
final class AdminRequestDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPServerRequestPart

    private var parser: HTTP1Parser
    /// The reason the bytes could not be read, kept for the answer.
    private(set) var failure: HTTP1RequestError?

    init(maxHeadBytes: Int) {
        parser = HTTP1Parser(role: .request, maxHeadBytes: maxHeadBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        while failure == nil {
            let part: HTTP1Parser.Part?
            do {
                part = try parser.next(&buffer)
            } catch {
                failure = error
                context.fireErrorCaught(HTTPParserError.invalidConstant)
                return
            }
            guard let part else { return }
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
                context.fireChannelRead(Self.wrapInboundOut(.end(trailers)))
            case .tunnel, .responseHead:
                // Bytes after a handshake, whose answer closes the connection: not HTTP.
                break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    private static func isHandshake(_ request: ClientRequest) -> Bool {
        WebSocketUpgrade.opensTunnel(request, framing: request.fields.framing(version: request.version))
    }
}
