import EventLoopSupport
import NIOCore
import NIOHPACK
import NIOHTTP1

/// The server side of one HTTP/2 connection (RFC 9113): reads its frames, keeps its streams,
/// windows and settings, and writes its frames. Each request stream drives a delegate of its own
/// (`makeProxy`; in the gateway a ProxyHandler: one route, one limiter decision, one upstream
/// exchange per stream) through an HTTP2ClientStream.
///
/// Why not swift-nio-http2's NIOHTTP2Handler: with it, a request cost the gateway 1.56 times
/// nginx's CPU (with this handler, 1.1 to 1.2 times), most of the difference its generality: a
/// copy-on-write connection state machine, an HTTP2Frame and its header list built and taken
/// apart per frame, events boxed as `Any` per stream, a connection manager in the pipeline, and
/// Huffman-coded, table-indexed response headers. A proxy's server side needs a narrow part of
/// HTTP/2: request streams from the client, responses back, no push. Request header blocks are
/// decoded by HPACKFieldDecoder (which keeps the bytes a value was sent as); responses are
/// encoded as plain literals (HTTP2ResponseFields).
///
/// Limits: SETTINGS_MAX_CONCURRENT_STREAMS (streams over it are refused), a header list size
/// (HPACK decoding stops beyond it), a header block's size and CONTINUATION frames, receive
/// windows (each stream's and the connection's) refilled only as the proxy takes data, so what
/// one connection can make the gateway hold is bounded by the connection window; budgets per
/// window of time (HTTP2FrameBudget) for stream resets (rapid reset), SETTINGS, PING, PRIORITY and
/// unknown frames, and empty DATA frames; control frames answered while the client reads
/// nothing; and the send timeout, after which a socket that has taken no bytes is closed (a
/// stream whose window the client keeps shut is its delegate's to time: it is told when the
/// stream's queue fills).
///
/// Stream identifiers follow RFC 9113, 5.1 and 5.1.1: a new stream below one already used is a
/// PROTOCOL_ERROR; frames on a stream this side reset are ignored for `resetGrace` (they may
/// have been in flight), after which DATA or HEADERS there end the connection.
///
/// It also drains the connection: on SIGTERM it sends GOAWAY, the streams already opened finish,
/// and the connection closes (at the latest after the grace time). An idle connection (no
/// streams for the idle timeout) gets GOAWAY and is closed.
package final class HTTP2ConnectionHandler: ChannelInboundHandler, DrainableConnection {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let limits: HTTP2ConnectionLimits
    private let makeProxy: () -> any HTTP2StreamDelegate
    private let registry: any HTTP2ConnectionRegistry
    /// Its deadlines are read on this loop's clock (`eventLoop.now`), the one its timers run on:
    /// read on another, a timer that fires before its deadline has come by that clock re-arms for
    /// a deadline already past on the loop's, and fires again at once, until the two agree.
    package var eventLoop: any EventLoop { registry.eventLoop }

    private var context: ChannelHandlerContext?
    private var reader: HTTP2FrameReader
    private var decoder: HPACKFieldDecoder
    private var streams: [UInt32: HTTP2ClientStream] = [:]
    /// The highest stream the client opened: lower ones are closed, higher ones idle.
    private var highestStream: UInt32 = 0
    private var receiveWindow: InboundWindow

    /// What the client lets the connection send, and each new stream (its SETTINGS and
    /// WINDOW_UPDATEs).
    private var sendWindow = HTTP2Wire.defaultWindow
    private var peerInitialWindow = HTTP2Wire.defaultWindow
    private var peerMaxFrameSize = HTTP2Wire.defaultMaxFrameSize
    /// The next header block starts by setting the client's decoder table to size 0: first on
    /// the connection, and again after the client changes SETTINGS_HEADER_TABLE_SIZE.
    private var tableSizeUpdateDue = true
    /// Streams with response data waiting for the connection's send window.
    private var streamsAwaitingWindow: [HTTP2ClientStream] = []

    private var resets = HTTP2FrameBudget.resets()
    private var settingsFrames = HTTP2FrameBudget.settings()
    private var pings = HTTP2FrameBudget.pings()
    private var noOps = HTTP2FrameBudget.noOps()
    private var emptyData = HTTP2FrameBudget.emptyData()
    /// Streams this side reset, and when: their frames in flight are ignored for a while.
    private var recentlyReset: [UInt32: NIODeadline] = [:]
    static let resetGrace = TimeAmount.seconds(1)
    /// PING and SETTINGS answered while the connection could not write: a client that sends
    /// them and reads nothing is cut off.
    private var controlFramesWhileBlocked = 0
    private static let controlFramesWhileBlockedLimit = 10_000

    /// Open, draining or closed, and idle or not: what to do at each turn is its answer.
    private var lifecycle: HTTP2ConnectionLifecycle
    /// The drain's grace timer or the idle timer.
    private var timer: Scheduled<Void>?
    /// The send timeout of a socket that takes no bytes.
    private var stallTimer: Scheduled<Void>?

    /// The frames written since the last write to the channel.
    private var batch = WriteBatch()
    private var allocator = ByteBufferAllocator()
    private var unflushed = false
    /// Inside a read: flushes wait for the read batch to end.
    private var reading = false
    private var flushScheduled = false
    /// Streams whose proxies took request parts in the current read batch.
    private var streamsWithParts: [HTTP2ClientStream] = []

    package init(registry: any HTTP2ConnectionRegistry, limits: HTTP2ConnectionLimits, makeProxy: @escaping () -> any HTTP2StreamDelegate) {
        self.registry = registry
        self.lifecycle = HTTP2ConnectionLifecycle(idleTimeout: limits.idleTimeout, graceTime: limits.graceTime, sendTimeout: limits.sendTimeout)
        self.limits = limits
        self.makeProxy = makeProxy
        // A block decodes to at least as many bytes as it has, give or take Huffman coding.
        self.reader = HTTP2FrameReader(maxHeaderBlockBytes: max(2 * limits.maxHeaderListSize, 64 * 1024))
        // Lists over the limit are answered 431 once decoded (the HPACK table must stay in step
        // for the streams after them); decoding stops, and the connection ends, at four times it.
        self.decoder = HPACKFieldDecoder(maxListSize: 4 * limits.maxHeaderListSize)
        // Every connection starts with 65,535 bytes of window, whatever the SETTINGS say.
        self.receiveWindow = InboundWindow(target: limits.connectionWindowTarget, initial: HTTP2Wire.defaultWindow)
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        allocator = context.channel.allocator
        registry.register(self)
        frames {
            $0.writeHTTP2Settings([
                (.maxConcurrentStreams, limits.maxConcurrentStreams),
                (.maxHeaderListSize, limits.maxHeaderListSize),
                (.initialWindowSize, limits.windowTarget),
                (.enablePush, 0),
                (.enableConnectProtocol, 1),
            ])
        }
        if let increment = receiveWindow.increment() { writeWindowUpdate(0, increment: increment) }
        flushNow()
        perform(lifecycle.opened(now: eventLoop.now))
        if registry.draining { drain() }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        registry.unregister(self)
        _ = lifecycle.close()
        timer?.cancel()
        stallTimer?.cancel()
        closeAllStreams()
        self.context = nil
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    // MARK: frames in

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if lifecycle.isClosed { return }
        // The instance forms of NIO's wrapping and unwrapping, and NIOAny's own initialiser for
        // writes: the static forms were called unspecialised, casting every buffer dynamically.
        var bytes = unwrapInboundIn(data)
        readFrames(&bytes)
    }

    private func readFrames(_ bytes: inout ByteBuffer) {
        reader.append(&bytes)
        reading = true
        defer { reading = false }
        do {
            while let frame = try reader.next() {
                try handle(frame)
                if lifecycle.isClosed { return }
            }
        } catch let error as HTTP2Wire.ConnectionError {
            fail(error)
        } catch {
            fail(HTTP2Wire.ConnectionError(code: .internalError, reason: "\(error)"))
        }
    }

    private func handle(_ frame: HTTP2FrameReader.Frame) throws {
        switch frame {
        case .headers(let id, let block, let endStream):
            let fields: HPACKHeaders
            do {
                fields = try decoder.decode(block)
            } catch {
                throw HTTP2Wire.ConnectionError(code: .compressionError, reason: "a header block HPACK cannot decode: \(error)")
            }
            try headersReceived(id, fields, endStream: endStream)
        case .data(let id, let payload, let flowControlled, let endStream):
            guard receiveWindow.received(flowControlled) else {
                throw HTTP2Wire.ConnectionError(code: .flowControlError, reason: "DATA beyond the connection's window")
            }
            if payload.readableBytes == 0 && !endStream { try spend(&emptyData, "empty DATA frames") }
            if let stream = streams[id] {
                // The stream holds what its proxy cannot take yet: the connection's window
                // counts those bytes as not given back until they are taken.
                if let code = stream.receiveData(payload, flowControlled: flowControlled, endStream: endStream) {
                    try streamError(stream, code)
                }
            } else if id > highestStream {
                throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "DATA on idle stream \(id)")
            } else if !inResetGrace(id) {
                throw HTTP2Wire.ConnectionError(code: .streamClosed, reason: "DATA on closed stream \(id)")
            }
            // A reset stream's DATA (sent before the client saw the reset) only counts for the
            // connection's window.
            if let increment = receiveWindow.increment() { writeWindowUpdate(0, increment: increment) }
        case .rstStream(let id, _):
            guard id <= highestStream else {
                throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "RST_STREAM on idle stream \(id)")
            }
            if let stream = streams[id] {
                stream.closed()
                forget(id)
            }
            try spendReset()
        case .settings(let settings):
            try spend(&settingsFrames, "SETTINGS frames")
            try apply(settings)
            frames { $0.writeHTTP2SettingsAck() }
            try controlFrameAnswered()
        case .ping(let payload):
            try spend(&pings, "PING frames")
            frames { $0.writeHTTP2Ping(payload, ack: true) }
            try controlFrameAnswered()
        case .pingAck(let payload):
            if payload == Self.drainPing {
                perform(lifecycle.drainPingAnswered(highestStream: highestStream, streamsOpen: !streams.isEmpty))
            }
        case .goAway:
            perform(lifecycle.peerGoingAway(streamsOpen: !streams.isEmpty))
        case .windowUpdate(let id, let increment):
            try windowUpdated(id, by: increment)
        case .streamError(let id, let code):
            if let stream = streams[id] {
                try streamError(stream, code)
            } else {
                try refuse(id, code)
            }
        case .noOp:
            try spend(&noOps, "PRIORITY or unknown frames")
        case .settingsAck, .ignored:
            break
        }
    }

    private func headersReceived(_ id: UInt32, _ fields: HPACKHeaders, endStream: Bool) throws {
        if let stream = streams[id] {
            let trailers: HTTPHeaders
            do {
                trailers = try HTTP2Request.trailers(fields)
            } catch {
                return try streamError(stream, .protocolError)
            }
            if let code = stream.receiveTrailers(trailers, endStream: endStream) { try streamError(stream, code) }
            return
        }
        guard id > highestStream else {
            // A stream this side reset while the client was still sending: its block has been
            // decoded, which is all HPACK needs. Otherwise a stream below one already used.
            guard inResetGrace(id) else {
                throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "HEADERS on stream \(id), below streams already used")
            }
            return
        }
        guard id & 1 == 1 else {
            throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "the client opened even stream \(id)")
        }
        highestStream = id
        guard lifecycle.serves(id) else { return }
        guard streams.count < limits.maxConcurrentStreams else { return try refuse(id, .refusedStream) }
        guard Self.listSize(fields) <= limits.maxHeaderListSize else {
            return refuseOversizedHeaders(id, requestEnded: endStream)
        }
        let head: HTTPRequestHead
        let opensTunnel: Bool
        let declaredLength: Int?
        do {
            (head, opensTunnel) = try HTTP2Request.request(fields, endStream: endStream)
            declaredLength = try HTTP2Request.declaredLength(head)
        } catch {
            return try refuse(id, .protocolError)
        }
        if endStream, let declaredLength, declaredLength != 0 { return try refuse(id, .protocolError) }
        let proxy = makeProxy()
        let stream = HTTP2ClientStream(
            id: id,
            connection: self,
            proxy: proxy,
            window: InboundWindow(target: limits.windowTarget, initial: limits.windowTarget),
            sendWindow: peerInitialWindow,
            declaredLength: declaredLength
        )
        streams[id] = stream
        lifecycle.streamOpened()
        proxy.attach(to: stream)
        stream.carriesTunnel = opensTunnel
        stream.receiveHead(head, endStream: endStream)
    }

    /// A header list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113, 6.5.2).
    private static func listSize(_ fields: HPACKHeaders) -> Int {
        var size = 0
        for (name, value, _) in fields { size += name.utf8.count + value.utf8.count + 32 }
        return size
    }

    /// 431, as HTTP/1.1 answers it, on a stream whose headers are over the limit; the
    /// connection goes on. The answer has no body, so no window can hold it back.
    private func refuseOversizedHeaders(_ id: UInt32, requestEnded: Bool) {
        let head = HTTPResponseHead(version: .http2, status: .requestHeaderFieldsTooLarge, headers: ["content-length": "0"])
        writeHeaders(id, endStream: true) { HTTP2ResponseFields.encode(head, into: &$0) }
        // Whatever body follows is not wanted (RFC 9113, 8.1).
        if !requestEnded { writeReset(id, code: .noError) }
    }

    private func apply(_ settings: [(UInt16, UInt32)]) throws {
        for (id, value) in settings {
            switch HTTP2Wire.Setting(rawValue: id) {
            case .enablePush:
                guard value <= 1 else { throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "ENABLE_PUSH \(value)") }
            case .initialWindowSize:
                guard value <= HTTP2Wire.maxWindow else {
                    throw HTTP2Wire.ConnectionError(code: .flowControlError, reason: "INITIAL_WINDOW_SIZE \(value)")
                }
                let delta = Int(value) - peerInitialWindow
                peerInitialWindow = Int(value)
                for stream in Array(streams.values) where !stream.initialWindowChanged(by: delta) {
                    throw HTTP2Wire.ConnectionError(code: .flowControlError, reason: "INITIAL_WINDOW_SIZE overflows stream \(stream.id)'s window")
                }
            case .maxFrameSize:
                guard value >= HTTP2Wire.defaultMaxFrameSize, value <= 16_777_215 else {
                    throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "MAX_FRAME_SIZE \(value)")
                }
                peerMaxFrameSize = Int(value)
            case .headerTableSize:
                // The encoder indexes nothing, but a client whose decoder table shrank waits
                // for the next block to say so (RFC 7541, 4.2), or fails it.
                tableSizeUpdateDue = true
            default:
                // The client's own concurrency and header list limits concern pushes and
                // requests this server does not make. Unknown settings are ignored, as the RFC
                // asks.
                break
            }
        }
    }

    private func windowUpdated(_ id: UInt32, by increment: Int) throws {
        if id == 0 {
            guard increment > 0 else {
                throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "a WINDOW_UPDATE of 0")
            }
            sendWindow += increment
            guard sendWindow <= HTTP2Wire.maxWindow else {
                throw HTTP2Wire.ConnectionError(code: .flowControlError, reason: "the connection's window overflowed")
            }
            let waiting = streamsAwaitingWindow
            streamsAwaitingWindow.removeAll()
            for stream in waiting {
                stream.awaitsConnectionWindow = false
                stream.windowOpened()
            }
        } else if let stream = streams[id] {
            guard increment > 0 else { return try streamError(stream, .protocolError) }
            if !stream.sendWindowIncreased(by: increment) { try streamError(stream, .flowControlError) }
        } else if id > highestStream {
            throw HTTP2Wire.ConnectionError(code: .protocolError, reason: "WINDOW_UPDATE on idle stream \(id)")
        }
    }

    private func streamError(_ stream: HTTP2ClientStream, _ code: HTTP2Wire.ErrorCode) throws {
        stream.reset(code)
        try spendReset()
    }

    /// Resets a stream that never opened (refused, malformed, or in error): it counts like a
    /// reset.
    private func refuse(_ id: UInt32, _ code: HTTP2Wire.ErrorCode) throws {
        writeReset(id, code: code)
        try spendReset()
    }

    private func spendReset() throws {
        try spend(&resets, "streams reset")
    }

    private func spend(_ budget: inout HTTP2FrameBudget, _ what: String) throws {
        guard budget.spend(at: eventLoop.now) else {
            throw HTTP2Wire.ConnectionError(code: .enhanceYourCalm, reason: "too many \(what)")
        }
    }

    /// Whether this side reset stream `id` less than `resetGrace` ago.
    private func inResetGrace(_ id: UInt32) -> Bool {
        guard let resetAt = recentlyReset[id] else { return false }
        return eventLoop.now - resetAt < Self.resetGrace
    }

    /// Bytes a stream holds for its proxy (or had held and let go of) count against the
    /// connection's window until they are taken.
    func holdConnectionWindow(_ bytes: Int) {
        receiveWindow.hold(bytes)
    }

    func releaseConnectionWindow(_ bytes: Int) {
        receiveWindow.taken(bytes)
        if lifecycle.isClosed { return }
        if let increment = receiveWindow.increment() { writeWindowUpdate(0, increment: increment) }
    }

    private func controlFrameAnswered() throws {
        guard !isWritable else { return }
        controlFramesWhileBlocked += 1
        guard controlFramesWhileBlocked <= Self.controlFramesWhileBlockedLimit else {
            throw HTTP2Wire.ConnectionError(code: .enhanceYourCalm, reason: "control frames while reading nothing")
        }
    }

    func streamTookParts(_ stream: HTTP2ClientStream) {
        streamsWithParts.append(stream)
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        let touched = streamsWithParts
        streamsWithParts.removeAll(keepingCapacity: true)
        var requestBytesOwed = false
        for stream in touched {
            stream.readComplete()
            requestBytesOwed = requestBytesOwed || stream.awaitsRequestBytes
        }
        flushNow()
        // A client with Nagle's algorithm on that writes a request's HEADERS and then its DATA
        // holds the DATA until the HEADERS are acknowledged, which the kernel delays (40 ms) on
        // a kept-alive connection when nothing is sent back in between (as HTTP1ServerCodec).
        if requestBytesOwed {
            context.channel.acknowledgeReceivedBytesAtOnce()
        }
        context.fireChannelReadComplete()
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        // On the loop's clock, which the tests' loop moves by hand.
        if let deadline = lifecycle.socketWritabilityChanged(writable: writable, now: eventLoop.now) {
            stallTimer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
                stallTimer = nil
                perform(lifecycle.stallDeadlineReached(now: eventLoop.now))
            }
        }
        if writable {
            controlFramesWhileBlocked = 0
            stallTimer?.cancel()
            stallTimer = nil
            for stream in Array(streams.values) { stream.proxy.clientWritabilityChanged() }
        }
        context.fireChannelWritabilityChanged()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        _ = lifecycle.close()
        timer?.cancel()
        stallTimer?.cancel()
        closeAllStreams()
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // TLS and socket errors: the connection is gone.
        context.close(promise: nil)
    }

    private func closeAllStreams() {
        let open = streams.values
        streams = [:]
        streamsAwaitingWindow.removeAll()
        for stream in open { stream.closed() }
    }

    // MARK: the connection's end

    /// Sent with a drain's first GOAWAY; its answer tells that the client has seen it.
    private static let drainPing: UInt64 = 0x6472_6169_6E69_6E67

    /// A graceful end in two steps (RFC 9113, 6.8): GOAWAY with the highest possible stream id
    /// and a PING; on the PING's answer, GOAWAY with the last stream accepted. Streams finish;
    /// the connection closes once they have, or after the grace time.
    package func drain() {
        perform(lifecycle.drain(now: eventLoop.now))
    }

    /// A connection error: GOAWAY with its code, then the connection closes.
    private func fail(_ error: HTTP2Wire.ConnectionError) {
        perform(lifecycle.connectionError(error.code, highestStream: highestStream), reason: error.reason)
    }

    /// Once its streams are done, a draining connection or one the client is leaving closes, and
    /// an open one starts its idle clock.
    private func closeIfDone() {
        guard streams.isEmpty else { return }
        perform(lifecycle.lastStreamClosed(now: eventLoop.now))
    }

    private func perform(_ action: HTTP2ConnectionLifecycle.Action, reason: String = "") {
        switch action {
        case .none:
            break
        case .announceDrain(let closeBy):
            frames {
                $0.writeHTTP2GoAway(lastStream: HTTP2Wire.maxStream, code: .noError)
                $0.writeHTTP2Ping(Self.drainPing, ack: false)
            }
            flushNow()
            timer?.cancel()
            timer = eventLoop.assumeIsolated().scheduleTask(deadline: closeBy) { [self] in perform(lifecycle.close()) }
        case .goAway(let lastStream, let code, let close):
            frames { $0.writeHTTP2GoAway(lastStream: lastStream, code: code, debug: reason) }
            flushNow()
            // After an error the client may still be sending: the GOAWAY must not be lost to a
            // reset. An orderly end (idle, drained) closes at once, as before.
            if close { closeChannel(lingering: code != .noError) }
        case .close:
            closeChannel()
        case .closeWhenIdleAt(let deadline):
            // A drain's grace timer, if armed, comes first.
            guard timer == nil else { return }
            timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
                timer = nil
                perform(lifecycle.idleDeadlineReached(now: eventLoop.now, highestStream: highestStream, streamsOpen: !streams.isEmpty))
            }
        }
    }

    private func closeChannel(lingering: Bool = false) {
        timer?.cancel()
        flushNow()
        guard let context else { return }
        // The streams end now, not when the channel is gone: their exchanges give back their
        // upstream connections and slots at once. A lingering close waits for the client to let
        // go, and over TLS a close first waits (up to TLS's shutdown timeout) for the client's
        // close_notify, which a client that has stopped reading never sends.
        closeAllStreams()
        if lingering {
            LingeringClose.close(context.channel)
        } else {
            context.close(promise: nil)
        }
    }

    // MARK: frames out, for the streams

    /// The stream is over: it leaves the connection.
    func forget(_ id: UInt32) {
        streams[id] = nil
        closeIfDone()
    }

    func awaitConnectionWindow(_ stream: HTTP2ClientStream) {
        guard !stream.awaitsConnectionWindow else { return }
        stream.awaitsConnectionWindow = true
        streamsAwaitingWindow.append(stream)
    }

    /// Up to `wanted` bytes of the connection's send window, and no more than a frame holds.
    func takeSendWindow(upTo wanted: Int) -> Int {
        let allowed = max(0, min(wanted, sendWindow, peerMaxFrameSize))
        sendWindow -= allowed
        return allowed
    }

    func writeHeaders(_ id: UInt32, endStream: Bool, promise: EventLoopPromise<Void>? = nil, block encode: (inout ByteBuffer) -> Void) {
        let updateTableSize = tableSizeUpdateDue
        tableSizeUpdateDue = false
        frames(promise: promise) {
            $0.writeHTTP2HeaderBlock(stream: id, endStream: endStream, maxFrameSize: peerMaxFrameSize) { block in
                if updateTableSize { HTTP2ResponseFields.writeTableSizeUpdate(to: 0, into: &block) }
                encode(&block)
            }
        }
    }

    /// A DATA frame within the windows (the stream has taken them).
    func writeData(_ id: UInt32, _ payload: ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?) {
        let flags = endStream ? HTTP2Wire.Flag.endStream : 0
        guard payload.readableBytes >= 4096 else {
            frames(promise: promise) {
                $0.writeHTTP2FrameHeader(length: payload.readableBytes, type: .data, flags: flags, stream: id)
                $0.writeImmutableBuffer(payload)
            }
            return
        }
        // A large payload goes as it is, after the frames before it, not copied.
        frames { $0.writeHTTP2FrameHeader(length: payload.readableBytes, type: .data, flags: flags, stream: id) }
        writeBatch()
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(NIOAny(payload), promise: promise)
        unflushed = true
    }

    func writeReset(_ id: UInt32, code: HTTP2Wire.ErrorCode) {
        // Bounded: resets are budgeted, and the entries older than the grace go first.
        if recentlyReset.count >= 256 {
            let now = eventLoop.now
            recentlyReset = recentlyReset.filter { now - $0.value < Self.resetGrace }
        }
        recentlyReset[id] = eventLoop.now
        frames { $0.writeHTTP2RSTStream(id, code: code) }
    }

    /// Windows are given back inside reads (the read's end flushes) and outside them, when a
    /// stream's delegate takes what it held: then the client may be waiting for them, sending
    /// nothing that would lead to a flush, so one is scheduled.
    func writeWindowUpdate(_ id: UInt32, increment: Int) {
        frames { $0.writeHTTP2WindowUpdate(id, increment: increment) }
        flush()
    }

    /// Streams flush as their responses end, many in one event-loop tick (each upstream's read
    /// is its own): one flush at the end of the tick sends them all in one write.
    func flush() {
        // Within a read batch, the batch's end flushes.
        guard !reading, !flushScheduled else { return }
        flushScheduled = true
        eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            flushNow()
        }
    }

    private func flushNow() {
        writeBatch()
        guard unflushed, let context else { return }
        unflushed = false
        context.flush()
    }

    private func frames(promise: EventLoopPromise<Void>? = nil, _ write: (inout ByteBuffer) -> Void) {
        batch.append(allocator: allocator, promise: promise, write)
    }

    private func writeBatch() {
        guard let (frames, promise) = batch.take() else { return }
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(NIOAny(frames), promise: promise)
        unflushed = true
    }
}
