import NIOCore

/// Turns the many flushes of an HTTP/2 connection's streams into one per event-loop tick.
///
/// Each stream flushes its own response, and every stream flush reaches the connection: without
/// this handler each response is a TLS record and a write syscall of its own. Here the first
/// flush of a tick schedules one flush for the end of the tick and later ones are absorbed, so
/// all the responses produced while the loop handled this tick's events leave in one write.
final class FlushCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = NIOAny

    private var flushScheduled = false

    func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            context.flush()
        }
    }
}
