import EventLoopSupport
import NIOCore

/// One flush per event-loop tick, and the small buffers written before it copied into one.
///
/// Used where many producers write and flush on one connection in the same tick: the requests of
/// an event loop sending their Redis commands. The first flush of a tick schedules one flush for
/// the end of the tick and later ones are absorbed, so everything leaves in one write. And since
/// each command is small, passing them down one by one would have TLS seal each into a record of
/// its own: copied into one buffer, a tick's writes leave as one record (or as few 16 KiB records
/// as their size needs).
public final class WriteCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = IOData
    public typealias OutboundOut = IOData

    /// Writes at least this large pass through uncopied (after what was gathered before them):
    /// a bulk body chunk gains nothing from a copy.
    static let copyLimit = 4096

    private var flushScheduled = false
    private var gathered = WriteBatch()

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(let buffer) = Self.unwrapOutboundIn(data), buffer.readableBytes < Self.copyLimit else {
            writeGathered(context: context)
            context.write(data, promise: promise)
            return
        }
        gathered.append(allocator: context.channel.allocator, promise: promise) { $0.writeImmutableBuffer(buffer) }
    }

    public func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.writeGathered(context: context)
            context.flush()
        }
    }

    /// A close can come in the same tick as the last writes: what that tick wrote goes out first.
    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if flushScheduled {
            writeGathered(context: context)
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        // Handed on rather than dropped, so the promises gathered with it are completed (failed,
        // on a closed channel) instead of leaked.
        writeGathered(context: context)
    }

    private func writeGathered(context: ChannelHandlerContext) {
        guard let (bytes, promise) = gathered.take() else { return }
        context.write(Self.wrapOutboundOut(.byteBuffer(bytes)), promise: promise)
    }
}
