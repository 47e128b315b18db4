import NIOCore
import NIOHTTP1

/// Answers requests the HTTP parser rejects: 431 for oversized headers, 400 for anything else
/// malformed, then lets the decoder close the connection. Sits where NIO's own
/// `HTTPServerProtocolErrorHandler` would, which can only say 400.
final class ProtocolErrorResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var responseInProgress = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if !responseInProgress {
            let response: LocalResponse
            if case .headerOverflow = parserError {
                response = .headersTooLarge()
            } else {
                response = .badRequest("The request is not valid HTTP/1.1.")
            }
            var body = context.channel.allocator.buffer(capacity: response.body.utf8.count)
            body.writeString(response.body)
            context.write(Self.wrapOutboundOut(.head(response.head(version: .http1_1, close: true))), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        }
        // The decoder closes the connection after this; nothing more to read from it.
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch Self.unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200:
            responseInProgress = true
        case .end:
            responseInProgress = false
        default:
            break
        }
        context.write(data, promise: promise)
    }
}
