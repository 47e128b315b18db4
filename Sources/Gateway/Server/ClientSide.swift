import EventLoopSupport
import HTTP2Server
import NIOCore
import NIOHTTP1

/// Where a ProxyHandler's answers go and its reads are asked of: an HTTP/1.1 connection (the
/// handler sits in its pipeline, behind the codec that writes its answers), or one stream of an
/// HTTP/2 connection (the connection's
/// handler drives it; a stream has no channel of its own, which would cost a pipeline, its
/// contexts and promises per request).
///
/// An enum, not a protocol: the two cases are all there are, and a switch costs no allocation
/// or dynamic dispatch on a path taken several times per request.
enum ClientSide {
    /// An HTTP/1.1 connection: its codec writes the proxy's answers directly; reads, flushes
    /// and the close go through the proxy's own context.
    case connection(HTTP1ServerCodec, ChannelHandlerContext)
    case stream(HTTP2ClientStream)

    var eventLoop: any EventLoop {
        switch self {
        case .connection(_, let context): return context.eventLoop
        case .stream(let stream): return stream.eventLoop
        }
    }

    /// Whether the client can take more now; when it cannot, upstream reads pause until it can.
    var isWritable: Bool {
        switch self {
        case .connection(let codec, _): return codec.isWritable
        case .stream(let stream): return stream.isWritable
        }
    }

    func write(_ part: HTTPServerResponsePart) {
        switch self {
        case .connection(let codec, _): codec.write(part, promise: nil)
        case .stream(let stream): stream.write(part)
        }
    }

    /// - Parameter promise: completed once the part is written, after a flush.
    func write(_ part: HTTPServerResponsePart, promise: EventLoopPromise<Void>) {
        switch self {
        case .connection(let codec, _): codec.write(part, promise: promise)
        case .stream(let stream): stream.write(part, promise: promise)
        }
    }

    /// - Parameter promise: completed once the part is written (a close waits for it).
    func writeAndFlush(_ part: HTTPServerResponsePart, promise: EventLoopPromise<Void>?) {
        switch self {
        case .connection(let codec, let context):
            codec.write(part, promise: promise)
            context.flush()
        case .stream(let stream): stream.writeAndFlush(part, promise: promise)
        }
    }

    /// Bytes of an open WebSocket tunnel.
    func writeTunnelBytes(_ bytes: ByteBuffer) {
        switch self {
        case .connection(let codec, _): codec.writeTunnelBytes(bytes, promise: nil)
        case .stream(let stream): stream.write(.body(.byteBuffer(bytes)))
        }
    }

    /// The tunnel's last bytes to the client are out (a stream's end is framed too).
    /// - Parameter promise: completed once they are written (a close waits for it).
    func finishTunnel(promise: EventLoopPromise<Void>?) {
        switch self {
        case .connection(let codec, let context):
            codec.writeTunnelBytes(ByteBuffer(), promise: promise)
            context.flush()
        case .stream(let stream):
            stream.writeAndFlush(.end(nil), promise: promise)
        }
    }

    /// Whether the connection reads no further request: it carries a WebSocket's bytes now (or
    /// will, once its handshake is answered).
    var readsNoMoreRequests: Bool {
        switch self {
        case .connection(let codec, _): return codec.readsNoMoreRequests
        case .stream: return false
        }
    }

    /// Parses the bytes a connection's codec held after a queued request, now served.
    func parseHeldBytes() {
        if case .connection(let codec, _) = self { codec.parseHeldBytes() }
    }

    func flush() {
        switch self {
        case .connection(_, let context): context.flush()
        case .stream(let stream): stream.flush()
        }
    }

    /// Flushes a connection once its loop has handled the sockets ready now (TickFlushes); a
    /// stream now (its connection gathers its streams' frames itself).
    func flushAtEndOfTick(_ flushes: TickFlushes) {
        switch self {
        case .connection(let codec, _): flushes.flushAtEndOfTick(codec)
        case .stream(let stream): stream.flush()
        }
    }

    /// Asks for more of the request (ProxyHandler calls it only when it can take more).
    func read() {
        switch self {
        case .connection(_, let context): context.read()
        case .stream(let stream): stream.deliverBufferedParts()
        }
    }

    /// Closes the connection, or resets the stream if it is still open.
    /// - Parameter lingering: after an answer: what the client still sends is read and dropped
    ///   for a while (LingeringClose), so that the answer is not lost to a reset.
    func close(lingering: Bool = false) {
        switch self {
        case .connection(_, let context) where lingering: LingeringClose.close(context.channel)
        case .connection(_, let context): context.close(promise: nil)
        case .stream(let stream): stream.reset()
        }
    }
}
