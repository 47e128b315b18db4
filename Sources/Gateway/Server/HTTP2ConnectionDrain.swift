import NIOCore

/// Drains an HTTP/2 connection as a whole: on SIGTERM its connection manager sends GOAWAY, the
/// streams already opened finish, and the connection closes (at the latest after the drain
/// timeout). Registered with the loop for as long as the connection lives, so a drain waits for it.
final class HTTP2ConnectionDrain: ChannelInboundHandler, DrainableConnection {
    typealias InboundIn = NIOAny

    private let resources: LoopResources
    private var context: ChannelHandlerContext?

    init(resources: LoopResources) {
        self.resources = resources
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        resources.register(self)
        if resources.draining { drain() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resources.unregister(self)
        self.context = nil
    }

    func drain() {
        // From the head of the pipeline, so the connection manager sees it wherever it sits.
        context?.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}
