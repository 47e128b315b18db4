import NIOCore
import NIOHTTP1
import NIOHTTP2

/// Drives the request streams of one HTTP/2 connection: each stream gets a ProxyHandler of its
/// own (one route, one limiter decision, one upstream exchange per stream), fed and answered
/// through an HTTP2ClientStream.
///
/// NIO can give every stream a child channel with a pipeline of its own. That cost, per request,
/// a channel, a pipeline and its contexts, activation and teardown events and a promise per
/// write: the largest share of the HTTP/2 profile after the proxy's own work. Here a stream is
/// two small objects. NIOHTTP2Handler, in front of this handler, still does all of the protocol:
/// framing, HPACK, stream states, stream limits, flow-control windows and the buffering of data
/// a window holds back, SETTINGS, PING, GOAWAY and the denial-of-service heuristics (rapid
/// reset). What is left here is what the child channels did: hand frames to their streams, give
/// receive windows back as data is taken, and tell streams when they may write again.
///
/// It also drains the connection as a whole: on SIGTERM the connection manager in front of it
/// sends GOAWAY, the streams already opened finish, and the connection closes (at the latest
/// after the drain timeout). It is registered with the loop for as long as the connection
/// lives, so a drain waits for it.
final class HTTP2ConnectionHandler: ChannelInboundHandler, DrainableConnection {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// Every stream's receive window and the connection's are kept near this.
    let windowTarget: Int
    private let makeProxy: () -> ProxyHandler
    private let resources: LoopResources
    var eventLoop: any EventLoop { resources.eventLoop }

    private var context: ChannelHandlerContext?
    private var streams: [HTTP2StreamID: HTTP2ClientStream] = [:]
    /// The connection's receive window: given back as data arrives (each stream's window is
    /// what holds a client back).
    private var connectionWindow: InboundWindow
    /// Streams whose proxies took request parts in the current read batch.
    private var streamsWithParts: [HTTP2ClientStream] = []

    /// - Parameters:
    ///   - windowTarget: the initial stream window this server announced in its SETTINGS.
    ///   - makeProxy: a ProxyHandler for a new stream.
    init(resources: LoopResources, windowTarget: Int, makeProxy: @escaping () -> ProxyHandler) {
        self.resources = resources
        self.windowTarget = windowTarget
        self.makeProxy = makeProxy
        // Every connection starts with 65,535 bytes of window, whatever the SETTINGS say.
        self.connectionWindow = InboundWindow(target: windowTarget, initial: 65_535)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        resources.register(self)
        if resources.draining { drain() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resources.unregister(self)
        closeAllStreams()
        self.context = nil
    }

    func drain() {
        // From the head of the pipeline, so that the connection manager sees it.
        context?.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    // MARK: frames in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let block):
            if let stream = streams[frame.streamID] {
                // A second header block is the request's trailers (NIOHTTP2Handler has checked
                // that it ends the stream).
                do {
                    stream.receive(.end(try HTTP2Request.trailers(block.headers)))
                } catch {
                    stream.reset(.protocolError)
                }
            } else {
                open(frame.streamID, block)
            }
        case .data(let data):
            guard let stream = streams[frame.streamID], case .byteBuffer(let buffer) = data.data else { return }
            if buffer.readableBytes > 0 { stream.receive(.body(buffer), bytes: buffer.readableBytes) }
            if data.endStream { stream.receive(.end(nil)) }
        case .rstStream:
            streams.removeValue(forKey: frame.streamID)?.closed()
        default:
            // SETTINGS, PING, WINDOW_UPDATE, PRIORITY and GOAWAY are NIOHTTP2Handler's business.
            break
        }
    }

    private func open(_ id: HTTP2StreamID, _ block: HTTP2Frame.FramePayload.Headers) {
        let head: HTTPRequestHead
        do {
            head = try HTTP2Request.head(block.headers, endStream: block.endStream)
        } catch {
            write(HTTP2Frame(streamID: id, payload: .rstStream(.protocolError)), promise: nil)
            flush()
            return
        }
        let proxy = makeProxy()
        let stream = HTTP2ClientStream(
            id: id,
            connection: self,
            proxy: proxy,
            window: InboundWindow(target: windowTarget, initial: windowTarget)
        )
        streams[id] = stream
        proxy.attach(to: stream)
        stream.receive(.head(head))
        if block.endStream { stream.receive(.end(nil)) }
    }

    func streamTookParts(_ stream: HTTP2ClientStream) {
        streamsWithParts.append(stream)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        let touched = streamsWithParts
        streamsWithParts.removeAll(keepingCapacity: true)
        for stream in touched { stream.readComplete() }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The most frequent first: each cast of an `Any` has a cost.
        if let closed = event as? StreamClosedEvent {
            streams.removeValue(forKey: closed.streamID)?.closed()
        } else if let window = event as? NIOHTTP2WindowUpdatedEvent {
            windowReported(window)
        } else if let change = event as? NIOHTTP2BulkStreamWindowChangeEvent {
            for stream in streams.values { stream.initialWindowChanged(by: change.delta) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func windowReported(_ event: NIOHTTP2WindowUpdatedEvent) {
        guard let size = event.inboundWindowSize else { return }
        if event.streamID == .rootStream {
            if let increment = connectionWindow.reported(size) { giveBack(increment, on: .rootStream) }
        } else {
            streams[event.streamID]?.windowReported(size)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for stream in streams.values { stream.proxy.clientWritabilityChanged() }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closeAllStreams()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream error has already reset its stream (a StreamClosedEvent follows); after a
        // connection error NIOHTTP2Handler has sent GOAWAY and closes. Nothing is left to do.
    }

    private func closeAllStreams() {
        let open = streams.values
        streams = [:]
        for stream in open { stream.closed() }
    }

    // MARK: frames out, for the streams

    func write(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(Self.wrapOutboundOut(frame), promise: promise)
    }

    func flush() {
        context?.flush()
    }

    func giveBack(_ increment: Int, on stream: HTTP2StreamID) {
        write(HTTP2Frame(streamID: stream, payload: .windowUpdate(windowSizeIncrement: increment)), promise: nil)
        flush()
    }

    /// A stream the proxy reset is no longer this connection's.
    func forget(_ id: HTTP2StreamID) {
        streams[id] = nil
    }
}
