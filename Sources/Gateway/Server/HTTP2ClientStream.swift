import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// One HTTP/2 request stream as its ProxyHandler sees it (`ClientSide.stream`): request parts
/// handed over as the proxy can take them, response parts sent as HEADERS and DATA frames.
///
/// The response head goes straight into the header block, indexed in HPACK only where values
/// repeat (HTTP2ResponseFields); a small response's body and end leave as one DATA frame, so it
/// is two frames, not three.
final class HTTP2ClientStream {
    let id: HTTP2StreamID
    private let connection: HTTP2ConnectionHandler
    let proxy: ProxyHandler
    private var window: InboundWindow

    /// Request parts that came while the proxy could take none (its limiter or upstream pending,
    /// or the upstream slower than the client); their DATA is given back to the window only once
    /// taken. An array: empty, it costs no allocation, and it is usually empty.
    private var waiting: [(part: HTTPServerRequestPart, bytes: Int)] = []
    private var handingOver = false
    /// Whether the proxy took request parts since its upstream was last flushed.
    private var tookParts = false

    /// The last body part written, held until the next write or flush, so that an end following
    /// it leaves in the same DATA frame.
    private var heldBody: IOData?
    /// DATA bytes written and not yet out on the connection (flow control may hold them).
    private var unsentBytes = 0
    /// Above this, the stream reports itself unwritable and the upstream's reads pause.
    static let unsentBytesLimit = 64 * 1024

    private(set) var isOpen = true
    private var responseEnded = false

    init(id: HTTP2StreamID, connection: HTTP2ConnectionHandler, proxy: ProxyHandler, window: InboundWindow) {
        self.id = id
        self.connection = connection
        self.proxy = proxy
        self.window = window
    }

    var eventLoop: any EventLoop { connection.eventLoop }

    var isWritable: Bool {
        connection.isWritable && unsentBytes < Self.unsentBytesLimit
    }

    // MARK: request parts

    /// - Parameter bytes: the part's DATA bytes, given back to the peer's window once taken.
    func receive(_ part: HTTPServerRequestPart, bytes: Int = 0) {
        if case .end = part { window.end() }
        if waiting.isEmpty && !handingOver && proxy.mayRead() {
            handOver(part)
            return
        }
        waiting.append((part, bytes))
        window.hold(bytes)
    }

    /// The proxy can take more (`ClientSide.read`): hand over what waits, in order.
    func deliverBufferedParts() {
        // The proxy may ask again from inside a part it is being handed; the loop below goes on.
        guard !handingOver else { return }
        handingOver = true
        var taken = 0
        while taken < waiting.count, isOpen, proxy.mayRead() {
            let (part, bytes) = waiting[taken]
            taken += 1
            handOver(part)
            if bytes > 0, let increment = window.taken(bytes) {
                connection.giveBack(increment, on: id)
            }
        }
        if taken > 0 && isOpen { waiting.removeFirst(taken) }
        handingOver = false
        // Usually outside a read batch: what was forwarded goes to the upstream now.
        readComplete()
    }

    private func handOver(_ part: HTTPServerRequestPart) {
        if !tookParts {
            tookParts = true
            connection.streamTookParts(self)
        }
        proxy.receive(part)
    }

    /// The end of a batch of parts: what the proxy forwarded leaves for the upstream in one flush.
    func readComplete() {
        guard tookParts else { return }
        tookParts = false
        proxy.clientReadComplete()
    }

    /// The state machine reports this stream's receive window.
    func windowReported(_ size: Int) {
        if let increment = window.reported(size) { connection.giveBack(increment, on: id) }
    }

    func initialWindowChanged(by delta: Int) {
        if let increment = window.initialSizeChanged(by: delta) { connection.giveBack(increment, on: id) }
    }

    // MARK: response parts

    func write(_ part: HTTPServerResponsePart) {
        write(part, promise: nil)
    }

    func writeAndFlush(_ part: HTTPServerResponsePart, promise: EventLoopPromise<Void>?) {
        write(part, promise: promise)
        flush()
    }

    func flush() {
        writeHeldBody()
        connection.flush()
    }

    private func write(_ part: HTTPServerResponsePart, promise: EventLoopPromise<Void>?) {
        guard isOpen else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch part {
        case .head(let head):
            writeHeldBody()
            var block = HPACKHeaders()
            block.reserveCapacity(head.headers.count + 1)
            // Common statuses are full matches in HPACK's static table: indexed, one byte.
            block.add(name: ":status", value: String(head.status.code), indexing: .indexable)
            HTTP2ResponseFields.append(head.headers, to: &block)
            connection.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: block))), promise: promise)
        case .body(let body):
            writeHeldBody()
            if promise == nil {
                heldBody = body
            } else {
                writeData(body, promise: promise)
            }
        case .end(let trailers?):
            responseEnded = true
            writeHeldBody()
            var block = HPACKHeaders()
            HTTP2ResponseFields.append(trailers, to: &block)
            connection.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: block, endStream: true))), promise: promise)
        case .end(nil):
            responseEnded = true
            let body = heldBody ?? .byteBuffer(ByteBuffer())
            heldBody = nil
            // Nothing is written after the end, so its size no longer matters to writability.
            connection.write(HTTP2Frame(streamID: id, payload: .data(.init(data: body, endStream: true))), promise: promise)
        }
    }

    private func writeHeldBody() {
        guard let body = heldBody else { return }
        heldBody = nil
        writeData(body, promise: nil)
    }

    /// A DATA frame that does not end the stream: counted against writability until it is out.
    private func writeData(_ body: IOData, promise: EventLoopPromise<Void>?) {
        let bytes = body.readableBytes
        unsentBytes += bytes
        let written = promise ?? eventLoop.makePromise()
        written.futureResult.assumeIsolated().whenComplete { _ in self.sent(bytes) }
        connection.write(HTTP2Frame(streamID: id, payload: .data(.init(data: body))), promise: written)
    }

    private func sent(_ bytes: Int) {
        let wasWritable = isWritable
        unsentBytes -= bytes
        if !wasWritable && isWritable { proxy.clientWritabilityChanged() }
    }

    // MARK: the stream's end

    /// Resets the stream if it is still open: with `code`, or, when the proxy closes its client
    /// (`ClientSide.close`), with NO_ERROR after a complete response (telling the client to stop
    /// sending its body, RFC 9113, 8.1) and CANCEL before one.
    func reset(_ code: HTTP2ErrorCode? = nil) {
        guard isOpen else { return }
        let code = code ?? (responseEnded ? .noError : .cancel)
        connection.write(HTTP2Frame(streamID: id, payload: .rstStream(code)), promise: nil)
        connection.flush()
        connection.forget(id)
        closed()
    }

    /// The stream is over (both ends done, reset by either side, or the connection gone).
    func closed() {
        guard isOpen else { return }
        isOpen = false
        waiting.removeAll()
        heldBody = nil
        proxy.clientClosed()
    }
}
