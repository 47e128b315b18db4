import EventLoopSupport
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS

/// What an upstream connection reports to the client exchange that currently owns it.
protocol UpstreamResponseDelegate: AnyObject {
    /// A response part from an HTTP/2 upstream, or a body part or end from an HTTP/1.1 one.
    func upstreamResponse(_ part: HTTPClientResponsePart)
    /// An HTTP/1.1 upstream's response head, as received.
    func upstreamResponseHead(_ head: ReceivedResponseHead)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    func upstreamClosed(error: (any Error)?)
    /// Bytes of an open WebSocket tunnel.
    func upstreamTunnelBytes(_ bytes: ByteBuffer)
}

/// The last handler of an upstream connection's pipeline. It forwards every response part to
/// its delegate (the client exchange that leased the connection) and lets that exchange stop
/// and restart reads, which is how a slow client holds back a fast upstream.
final class UpstreamHandler: ChannelDuplexHandler, TickFlushable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The exchange that leased the connection. Held strongly for the exchange's length, and
    /// let go when it ends: the pool takes the connection back, or the connection closes (the
    /// exchange's every way out does one of the two). Not weak: a weak reference gives its
    /// object a side table, and every retain and release of a ProxyHandler would then take the
    /// slow path.
    var delegate: (any UpstreamResponseDelegate)?
    /// Told when the connection closes, so that it can forget the connection if it is idle; let
    /// go then. Strong, for the reason `delegate` is: a weak reference would give the pool a side
    /// table, and its retains and releases on every request would take the slow path. The cycle
    /// it makes with the pool's idle list ends with the connection, and a pool that a reload
    /// retires closes its idle connections at once.
    var pool: UpstreamPool?
    /// Handed out by its pool and not yet back (the pool's to set, on its loop).
    var isLeased = false
    /// The upstream sent bytes after a response ended, before another request: the connection
    /// closes instead of going back to its pool.
    var receivedBytesOutOfTurn = false

    /// The connection's codec, which hands over response parts and takes request parts
    /// directly (never boxed as `NIOAny` through the pipeline). Let go when this is removed.
    var codec: HTTP1ClientCodec?
    private var context: ChannelHandlerContext?
    private var readsPaused = false
    private var readPending = false
    private var lastError: (any Error)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        codec = nil
    }

    // MARK: used by the exchange

    /// - Returns: whether a flush has anything to send (an HTTP/1.1 request's end often has not).
    @discardableResult
    func write(_ part: HTTPClientRequestPart) -> Bool {
        if let codec {
            return codec.write(part, promise: nil)
        }
        // An HTTP/2 stream: its codec sits in the stream's pipeline.
        context?.write(Self.wrapOutboundOut(part), promise: nil)
        return true
    }

    /// Writes a request's head (an HTTP/1.1 one straight from the client's fields). A WebSocket
    /// handshake's opens a tunnel when the upstream answers it 101.
    func writeHead(_ request: UpstreamRequest) {
        if let codec {
            codec.writeHead(request, promise: nil)
        } else {
            context?.write(Self.wrapOutboundOut(.head(request.head)), promise: nil)
        }
    }

    func writeTunnelBytes(_ bytes: ByteBuffer) {
        codec?.writeTunnelBytes(bytes)
    }

    func flush() {
        context?.flush()
    }

    func flushNow() {
        flush()
    }

    func pauseReads() {
        readsPaused = true
    }

    func resumeReads() {
        readsPaused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    func close() {
        delegate = nil
        context?.close(promise: nil)
    }

    // MARK: channel events

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    /// A part of the response from an HTTP/2 stream's codec.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received(Self.unwrapInboundIn(data))
    }

    /// A part of the response (the codec's direct way in).
    func received(_ part: HTTPClientResponsePart) {
        guard let delegate else {
            // Bytes on a connection that no request owns: the upstream is confused. Drop it.
            context?.close(promise: nil)
            return
        }
        delegate.upstreamResponse(part)
    }

    /// A response head (the codec's direct way in).
    func receivedHead(_ head: ReceivedResponseHead) {
        guard let delegate else {
            context?.close(promise: nil)
            return
        }
        delegate.upstreamResponseHead(head)
    }

    /// Bytes of an open tunnel (the codec's direct way in).
    func receivedTunnelBytes(_ bytes: ByteBuffer) {
        guard let delegate else {
            context?.close(promise: nil)
            return
        }
        delegate.upstreamTunnelBytes(bytes)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        lastError = error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        delegate.take()?.upstreamClosed(error: lastError)
        pool.take()?.connectionClosed(self)
        context.fireChannelInactive()
    }
}
