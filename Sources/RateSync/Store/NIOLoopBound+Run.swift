import NIOCore

extension NIOLoopBound {
    /// Runs `body` with the value on its own loop, at once when that is the current one, else
    /// hopping there, and completes on `eventLoop`.
    public func run<Result: Sendable>(
        from eventLoop: any EventLoop,
        _ body: @escaping @Sendable (Value) -> EventLoopFuture<Result>
    ) -> EventLoopFuture<Result> {
        if self.eventLoop.inEventLoop { return body(value).hop(to: eventLoop) }
        return self.eventLoop.flatSubmit { body(self.value) }.hop(to: eventLoop)
    }
}
