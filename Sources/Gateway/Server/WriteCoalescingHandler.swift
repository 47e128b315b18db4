import NIOCore

/// Sits under an HTTP/2 connection (above TLS): one flush per event-loop tick, and the small
/// frames written before it copied into one buffer.
///
/// Each stream flushes its own response, and every stream flush reaches the connection: without
/// this handler each response would be a write syscall of its own. Here the first flush of a
/// tick schedules one flush for the end of the tick and later ones are absorbed. And each frame
/// the HTTP/2 handler writes is a buffer of its own (a HEADERS frame, a DATA frame's header, its
/// payload): passed down one by one, TLS seals each into a record of its own, so a response cost
/// three records and three encryptions. Copied into one buffer, a tick's responses leave as one
/// record (or as few 16 KiB records as their size needs).
final class WriteCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Writes at least this large pass through uncopied (after what was gathered before them):
    /// a bulk body chunk gains nothing from a copy.
    static let copyLimit = 4096

    private var flushScheduled = false
    private var gathered: ByteBuffer?
    private var gatheredPromises: [EventLoopPromise<Void>] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(let buffer) = Self.unwrapOutboundIn(data), buffer.readableBytes < Self.copyLimit else {
            writeGathered(context: context)
            context.write(data, promise: promise)
            return
        }
        if gathered == nil {
            gathered = context.channel.allocator.buffer(capacity: Self.copyLimit)
        }
        gathered!.writeImmutableBuffer(buffer)
        if let promise { gatheredPromises.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.writeGathered(context: context)
            context.flush()
        }
    }

    /// A close can come in the same tick as the last response (the connection manager closes a
    /// draining connection as its last stream ends): what that tick wrote goes out first.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if flushScheduled {
            writeGathered(context: context)
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Handed on rather than dropped, so the promises gathered with it are completed (failed,
        // on a closed channel) instead of leaked.
        writeGathered(context: context)
    }

    private func writeGathered(context: ChannelHandlerContext) {
        guard let buffer = gathered else { return }
        gathered = nil
        let promises = gatheredPromises
        gatheredPromises = []
        guard !promises.isEmpty else {
            context.write(Self.wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        for promise in promises { written.futureResult.cascade(to: promise) }
        context.write(Self.wrapOutboundOut(.byteBuffer(buffer)), promise: written)
    }
}
