import EventLoopSupport
import NIOCore
import RateSync

/// Speaks RESP on one connection: commands go out encoded by hiredis's formatter, replies come
/// back parsed by hiredis's reader and complete the commands' promises in order.
///
/// Commands written during one event-loop tick leave in one flush (pipelining: the
/// WriteCoalescingHandler before this one gathers them). One timer per connection watches the
/// oldest command's deadline; a missed deadline fails every pending command and closes the
/// connection, since replies that arrive late would answer the wrong commands.
final class RedisProtocolHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let promise: EventLoopPromise<RedisValue>
        let deadline: NIODeadline
    }

    private let eventLoop: any EventLoop
    private let reader = RedisReplyReader()
    private var pending: CircularBuffer<Pending> = []
    private var context: ChannelHandlerContext?
    private var timer: ConnectionTimer?
    /// Once set, the connection is finished and every new command fails with this.
    private var failure: (any Error)?
    /// Receives replies no command asked for (pub/sub messages); without it such a reply is a
    /// protocol error.
    var onPush: ((RedisValue) -> Void)?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        timer = ConnectionTimer(eventLoop: context.eventLoop) { [weak self] in self?.deadlineReached() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    /// Sends a command; must be called on the connection's event loop.
    func send(_ arguments: [String], deadline: NIODeadline) -> EventLoopFuture<RedisValue> {
        guard let context else {
            return eventLoop.makeFailedFuture(failure ?? RedisConnectionError.closed)
        }
        let promise = context.eventLoop.makePromise(of: RedisValue.self)
        if let failure {
            promise.fail(failure)
            return promise.futureResult
        }
        var buffer = context.channel.allocator.buffer(capacity: 128)
        RedisCommandEncoder.encode(arguments, into: &buffer)
        pending.append(Pending(promise: promise, deadline: deadline))
        context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
        timer?.arm(at: deadline)
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try reader.feed(Self.unwrapInboundIn(data))
            while let reply = try reader.next() {
                guard let first = pending.popFirst() else {
                    guard let onPush else { throw RedisProtocolError("a reply arrived that no command asked for") }
                    onPush(reply)
                    continue
                }
                first.promise.succeed(reply)
            }
        } catch {
            fail(error, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisConnectionError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, context: context)
    }

    private func deadlineReached() {
        guard let first = pending.first, let context else { return }
        if first.deadline <= .now() {
            fail(RedisConnectionError.timedOut, context: context)
        } else {
            timer?.arm(at: first.deadline)
        }
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        if failure == nil { failure = error }
        timer?.cancel()
        while let item = pending.popFirst() {
            item.promise.fail(error)
        }
    }
}

public enum RedisConnectionError: Error, CustomStringConvertible, Equatable {
    case closed
    case timedOut
    case notConnected(reason: String)

    public var description: String {
        switch self {
        case .closed: return "connection closed"
        case .timedOut: return "no answer within the command deadline"
        case .notConnected(let reason): return "not connected (\(reason))"
        }
    }
}
