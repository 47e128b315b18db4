import NIOCore
import NIOHTTP1

/// One HTTP/2 request stream as its delegate (the gateway's proxy) sees it: request parts handed
/// over as the delegate can take them, response parts sent as HEADERS and DATA frames within the
/// client's flow-control windows.
///
/// A small response's body and end leave as one DATA frame, so it is two frames, not three.
package final class HTTP2ClientStream {
    let id: UInt32
    private let connection: HTTP2ConnectionHandler
    let proxy: any HTTP2StreamDelegate

    // MARK: request side

    private var window: InboundWindow
    /// Request parts that came while the proxy could take none (its limiter or upstream pending,
    /// or the upstream slower than the client); their DATA is given back to the window only once
    /// taken. An array: empty, it costs no allocation, and it is usually empty.
    private var waiting: [(part: HTTPServerRequestPart, bytes: Int)] = []
    private var handingOver = false
    /// Whether the proxy took request parts since its upstream was last flushed.
    private var tookParts = false
    /// What content-length declared, which the DATA must add up to.
    private let declaredLength: Int?
    private var receivedLength = 0

    // MARK: response side

    /// What the client lets this stream send (SETTINGS_INITIAL_WINDOW_SIZE, then WINDOW_UPDATE).
    private var sendWindow: Int
    /// Response parts the windows hold back, in order.
    private var queue: [Outgoing] = []
    private var queuedBytes = 0
    /// Above this, the stream reports itself unwritable and the upstream's reads pause.
    static let queuedBytesLimit = 64 * 1024
    private var overLimit = false
    /// Waiting for the connection's send window (registered with the connection once).
    var awaitsConnectionWindow = false
    /// The last body part written, held until the next write or flush, so that an end following
    /// it leaves in the same DATA frame.
    private var heldBody: ByteBuffer?
    /// A final response head not framed yet: if the end follows with no body (a gRPC
    /// "trailers-only" answer, an empty one), one HEADERS frame carries both, as gRPC clients
    /// require (they read a status in a HEADERS frame that ends the stream, and only there).
    private var heldHead: HeldHead?

    /// A final response head, as the delegate gave it: a head to encode, or a block of fields
    /// it encoded itself.
    private enum HeldHead {
        case head(HTTPResponseHead)
        case block(ByteBuffer)

        func encode(into buffer: inout ByteBuffer) {
            switch self {
            case .head(let head): HTTP2ResponseFields.encode(head, into: &buffer)
            case .block(var block): buffer.writeBuffer(&block)
            }
        }
    }
    /// RFC 9113's state of the stream: which sides have ended (the response's end counts once
    /// framed), or closed.
    private var state = HTTP2StreamState.open
    /// The delegate has written the response's end (it may wait in the queue for a window).
    private var responseEnded = false

    var isOpen: Bool { !state.isClosed }
    /// Whether the client still owes this stream's request bytes (its body, or trailers).
    var awaitsRequestBytes: Bool { !state.remoteEnded && !carriesTunnel }
    /// An extended CONNECT for WebSocket (RFC 8441): its request is whole with its head, its
    /// DATA frames are the tunnel's bytes, and its END_STREAM closes the tunnel.
    var carriesTunnel = false

    private enum Outgoing {
        case data(ByteBuffer, end: Bool, promise: EventLoopPromise<Void>?)
        case trailers(HTTPHeaders, promise: EventLoopPromise<Void>?)
    }

    init(id: UInt32, connection: HTTP2ConnectionHandler, proxy: any HTTP2StreamDelegate, window: InboundWindow, sendWindow: Int, declaredLength: Int?) {
        self.id = id
        self.connection = connection
        self.proxy = proxy
        self.window = window
        self.sendWindow = sendWindow
        self.declaredLength = declaredLength
    }

    package var eventLoop: any EventLoop { connection.eventLoop }

    package var isWritable: Bool {
        connection.isWritable && queuedBytes < Self.queuedBytesLimit
    }

    // MARK: request parts, from the connection

    func receiveHead(_ head: HTTPRequestHead, endStream: Bool) {
        receive(.head(head))
        if carriesTunnel && isOpen {
            // The handshake it stands for has no body: its end, at once (no DATA, no window).
            proxy.receive(.end(nil))
        }
        // The proxy may have reset the stream already.
        if endStream && isOpen { receiveEnd(nil) }
    }

    /// A DATA frame. - Returns: the code to reset the stream with, if the frame breaks the rules.
    func receiveData(_ payload: ByteBuffer, flowControlled: Int, endStream: Bool) -> HTTP2Wire.ErrorCode? {
        guard !state.remoteEnded else { return .streamClosed }
        guard window.received(flowControlled) else { return .flowControlError }
        let bytes = payload.readableBytes
        receivedLength += bytes
        if let declaredLength, receivedLength > declaredLength || (endStream && receivedLength != declaredLength) {
            return .protocolError
        }
        if bytes > 0 {
            receive(.body(payload), bytes: bytes)
            // The proxy may have answered and reset the stream (a body over its limit, say).
            guard isOpen else { return nil }
        }
        if endStream {
            receiveEnd(nil)
        } else if isOpen {
            giveBackWindow()
        }
        return nil
    }

    /// A second header block: the request's trailers. - Returns: a code to reset the stream with.
    func receiveTrailers(_ trailers: HTTPHeaders, endStream: Bool) -> HTTP2Wire.ErrorCode? {
        guard !state.remoteEnded else { return .streamClosed }
        guard endStream else { return .protocolError }
        if let declaredLength, receivedLength != declaredLength { return .protocolError }
        receiveEnd(trailers)
        return nil
    }

    private func receiveEnd(_ trailers: HTTPHeaders?) {
        window.end()
        receive(.end(trailers))
        // The client's side is over now, and the stream with it if the response has ended too
        // (unless the delegate reset the stream meanwhile: then nothing is left to do).
        if state.receive(endStream: true) == .accepted(closes: true) { finish() }
    }

    /// - Parameter bytes: the part's DATA bytes, given back to the peer's window once taken.
    private func receive(_ part: HTTPServerRequestPart, bytes: Int = 0) {
        if waiting.isEmpty && !handingOver && proxy.mayRead() {
            handOver(part)
            return
        }
        waiting.append((part, bytes))
        window.hold(bytes)
        connection.holdConnectionWindow(bytes)
    }

    /// The delegate can take more: hand over what waits, in order.
    package func deliverBufferedParts() {
        // The proxy may ask again from inside a part it is being handed; the loop below goes on.
        guard !handingOver else { return }
        handingOver = true
        var taken = 0
        var bytesTaken = 0
        while taken < waiting.count, isOpen, proxy.mayRead() {
            let (part, bytes) = waiting[taken]
            taken += 1
            handOver(part)
            window.taken(bytes)
            bytesTaken += bytes
        }
        if bytesTaken > 0 { connection.releaseConnectionWindow(bytesTaken) }
        if taken > 0 && isOpen { waiting.removeFirst(taken) }
        handingOver = false
        if isOpen { giveBackWindow() }
        // Usually outside a read batch: what was forwarded goes to the upstream now.
        readComplete()
    }

    private func giveBackWindow() {
        if let increment = window.increment() { connection.writeWindowUpdate(id, increment: increment) }
    }

    private func handOver(_ part: HTTPServerRequestPart) {
        if !tookParts {
            tookParts = true
            connection.streamTookParts(self)
        }
        guard carriesTunnel else {
            proxy.receive(part)
            return
        }
        switch part {
        case .head: proxy.receive(part)
        case .body(let bytes): proxy.receiveTunnelBytes(bytes)
        case .end: proxy.clientEndedTunnel()
        }
    }

    /// The end of a batch of parts: what the proxy forwarded leaves for the upstream in one flush.
    func readComplete() {
        guard tookParts else { return }
        tookParts = false
        proxy.clientReadComplete()
    }

    // MARK: response parts, from the proxy

    package func write(_ part: HTTPServerResponsePart) {
        write(part, promise: nil)
    }

    package func writeAndFlush(_ part: HTTPServerResponsePart, promise: EventLoopPromise<Void>?) {
        write(part, promise: promise)
        flush()
    }

    package func flush() {
        sendHeldHead()
        sendHeldBody()
        connection.flush()
    }

    /// Writes a final response head whose fields the delegate encodes itself (with
    /// HTTP2ResponseFields' `encodeStatus`, then `encodeField` for each field).
    package func writeHead(encodedBy encode: (inout ByteBuffer) -> Void) {
        guard isOpen, !responseEnded else { return }
        sendHeldHead()
        sendHeldBody()
        var block = ByteBufferAllocator().buffer(capacity: 512)
        encode(&block)
        heldHead = .block(block)
    }

    /// Writes a part; it leaves with the next flush.
    package func write(_ part: HTTPServerResponsePart, promise: EventLoopPromise<Void>?) {
        guard isOpen, !responseEnded else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch part {
        case .head(let head):
            sendHeldHead()
            sendHeldBody()
            if head.status.code >= 200 {
                heldHead = .head(head)
            } else {
                connection.writeHeaders(id, endStream: false) { HTTP2ResponseFields.encode(head, into: &$0) }
            }
            promise?.succeed()
        case .body(let body):
            sendHeldHead()
            sendHeldBody()
            guard case .byteBuffer(let buffer) = body else {
                // Upstream bodies and local answers are buffers; a file region never reaches here.
                promise?.fail(ChannelError.operationUnsupported)
                reset(.internalError)
                return
            }
            if promise == nil {
                heldBody = buffer
            } else {
                send(buffer, end: false, promise: promise)
            }
        case .end(let trailers?):
            responseEnded = true
            sendHeldHead()
            sendHeldBody()
            if queue.isEmpty {
                sendTrailers(trailers, promise: promise)
            } else {
                queue.append(.trailers(trailers, promise: promise))
            }
        case .end(nil):
            responseEnded = true
            if heldBody == nil, let head = heldHead.take() {
                connection.writeHeaders(id, endStream: true, promise: promise) { head.encode(into: &$0) }
                localEnd()
                return
            }
            sendHeldHead()
            send(heldBody.take() ?? ByteBuffer(), end: true, promise: promise)
        }
    }

    private func sendHeldHead() {
        guard let head = heldHead.take() else { return }
        connection.writeHeaders(id, endStream: false) { head.encode(into: &$0) }
    }

    private func sendHeldBody() {
        guard let body = heldBody.take() else { return }
        send(body, end: false, promise: nil)
    }

    private func send(_ data: ByteBuffer, end: Bool, promise: EventLoopPromise<Void>?) {
        var data = data
        if queue.isEmpty && sendWithinWindows(&data, end: end, promise: promise) { return }
        queue.append(.data(data, end: end, promise: promise))
        queuedBytes += data.readableBytes
        if queuedBytes >= Self.queuedBytesLimit && !overLimit {
            overLimit = true
            // The delegate times how long the client then takes nothing (its send timeout).
            proxy.clientWritabilityChanged()
        }
    }

    /// Frames as much of `data` as the windows allow. - Returns: whether all of it (and its end)
    /// went.
    private func sendWithinWindows(_ data: inout ByteBuffer, end: Bool, promise: EventLoopPromise<Void>?) -> Bool {
        while true {
            let remaining = data.readableBytes
            if remaining == 0 {
                if end {
                    connection.writeData(id, data, endStream: true, promise: promise)
                    localEnd()
                } else {
                    promise?.succeed()
                }
                return true
            }
            let allowed = connection.takeSendWindow(upTo: min(remaining, sendWindow))
            if allowed == 0 {
                if sendWindow > 0 { connection.awaitConnectionWindow(self) }
                return false
            }
            sendWindow -= allowed
            let chunk = data.readSlice(length: allowed)!
            let last = data.readableBytes == 0
            connection.writeData(id, chunk, endStream: last && end, promise: last ? promise : nil)
            if last {
                if end { localEnd() } else { promise?.succeed() }
                return true
            }
        }
    }

    private func sendTrailers(_ trailers: HTTPHeaders, promise: EventLoopPromise<Void>?) {
        connection.writeHeaders(id, endStream: true, promise: promise) { HTTP2ResponseFields.encode(trailers, into: &$0) }
        localEnd()
    }

    /// A window grew: send what waits.
    func windowOpened() {
        while isOpen, !queue.isEmpty {
            // Taken out while it is sent: its end may close the stream, which fails what is queued.
            switch queue.removeFirst() {
            case .data(var data, let end, let promise):
                let before = data.readableBytes
                let done = sendWithinWindows(&data, end: end, promise: promise)
                queuedBytes -= before - data.readableBytes
                if !done {
                    queue.insert(.data(data, end: end, promise: promise), at: 0)
                    noteWritability()
                    return
                }
            case .trailers(let trailers, let promise):
                sendTrailers(trailers, promise: promise)
            }
        }
        noteWritability()
    }

    private func noteWritability() {
        guard overLimit, queuedBytes < Self.queuedBytesLimit else { return }
        overLimit = false
        if isOpen && connection.isWritable { proxy.clientWritabilityChanged() }
    }

    /// The client's WINDOW_UPDATE. - Returns: false if the window would overflow.
    func sendWindowIncreased(by increment: Int) -> Bool {
        sendWindow += increment
        guard sendWindow <= HTTP2Wire.maxWindow else { return false }
        windowOpened()
        return true
    }

    /// The client's SETTINGS_INITIAL_WINDOW_SIZE changed by `delta`. - Returns: false when the
    /// window would overflow (a FLOW_CONTROL_ERROR of the connection).
    func initialWindowChanged(by delta: Int) -> Bool {
        sendWindow += delta
        guard sendWindow <= HTTP2Wire.maxWindow else { return false }
        if delta > 0 { windowOpened() }
        return true
    }

    // MARK: the stream's end

    private func localEnd() {
        if state.responseEnd() { finish() }
    }

    /// Both sides ended: the stream leaves the connection.
    private func finish() {
        connection.forget(id)
        release()
    }

    /// Resets the stream if it is still open: with `code`, or, when the delegate closes its
    /// client, with NO_ERROR after a complete response (telling the client to stop
    /// sending its body, RFC 9113, 8.1) and CANCEL before one.
    package func reset(_ code: HTTP2Wire.ErrorCode? = nil) {
        guard isOpen else { return }
        let code = code ?? (state.localEnded ? .noError : .cancel)
        connection.writeReset(id, code: code)
        connection.flush()
        connection.forget(id)
        closed()
    }

    /// The stream is over: reset by either side, or its connection gone (both sides ending is
    /// `finish`).
    func closed() {
        guard state.reset() else { return }
        release()
    }

    /// Gives back what the stream held and tells its delegate; once, as the stream closes.
    private func release() {
        // What it held is dropped: the connection's window has it back.
        let held = waiting.reduce(0) { $0 + $1.1 }
        waiting.removeAll()
        if held > 0 { connection.releaseConnectionWindow(held) }
        heldBody = nil
        heldHead = nil
        for item in queue {
            switch item {
            case .data(_, _, let promise?), .trailers(_, let promise?): promise.fail(ChannelError.ioOnClosedChannel)
            default: break
            }
        }
        queue.removeAll()
        proxy.clientClosed()
    }
}
