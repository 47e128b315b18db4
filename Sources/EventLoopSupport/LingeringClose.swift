import NIOCore

/// Ends a connection whose client may still be sending, without losing the last thing written to
/// it (an error answer, a GOAWAY).
///
/// Closing a TCP socket that has unread input makes the kernel send RST instead of FIN, and a
/// client that receives RST may drop what it had not yet read, or fail its own write before it
/// reads: the client that most needs the answer (one sending a body we refused, or a frame we
/// rejected) would never see it. So the connection stops writing (FIN after the pending writes),
/// reads and throws away whatever still arrives, and closes once the client closes its side (its
/// FIN: the channel closes by itself, or, where it allows half-closure, tells so) or `limit` has
/// passed, whichever comes first (nginx's lingering close).
///
/// The handler sits first in the pipeline: no byte that arrives from here on reaches a decoder
/// (TLS included), so nothing after the end is parsed, routed or forwarded.
public final class LingeringClose: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer

    /// How long a client gets to read the end and close: enough for a response in flight and a
    /// client's reaction, bounded so that a client that never closes costs only a socket, briefly.
    public static let defaultLimit = TimeAmount.seconds(3)

    private let limit: TimeAmount
    private var deadline: Scheduled<Void>?

    private init(limit: TimeAmount) {
        self.limit = limit
    }

    /// Starts the lingering end of `channel`; call on its event loop, after the last write. A
    /// channel already inactive, or already lingering, is closed at once: a second end asked
    /// for while the first lingers cuts the wait short rather than starting another.
    public static func close(_ channel: any Channel, limit: TimeAmount = defaultLimit) {
        guard channel.isActive,
              (try? channel.pipeline.syncOperations.context(handlerType: LingeringClose.self)) == nil
        else {
            channel.close(promise: nil)
            return
        }
        do {
            try channel.pipeline.syncOperations.addHandler(LingeringClose(limit: limit), position: .first)
        } catch {
            channel.close(promise: nil)
            return
        }
        channel.flush()
        let outputClosed = channel.eventLoop.makePromise(of: Void.self)
        outputClosed.futureResult.whenFailure { _ in channel.close(promise: nil) }
        channel.close(mode: .output, promise: outputClosed)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: limit) {
            context.close(promise: nil)
        }
        // Whatever later handlers do with reads (a paused request body stops them), the input is
        // read until its end from now on.
        context.read()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.read()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        context.close(promise: nil)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }
}
