import NIOCore

/// Closes a connection that has not settled on a protocol in time: a TLS handshake, an ALPN
/// choice or an h2c preface that never completes. Without it, a client that connects and sends
/// nothing, or a few bytes, would hold its connection (and a file descriptor) for good: the
/// idle deadlines belong to the HTTP/1.1 and HTTP/2 handlers, which are not there yet.
///
/// First in the pipeline of a TLS or h2c connection; taken out as the protocol's handlers are
/// put in (`ConnectionPipelines.endNegotiation`), so it costs nothing afterwards.
final class NegotiationDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            context.close(promise: nil)
        }
    }
}
