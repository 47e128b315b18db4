import NIOCore
import NIOHTTP1

/// Every decision about the requests of one client connection (or one HTTP/2 stream): which
/// exchange is in flight and how far it got, what a request part, a verdict, an upstream
/// connection, a response's end, a close or a deadline means now, and what to do about it.
/// ProxyHandler feeds events in and performs the actions; it decides nothing itself.
///
/// Generic over the exchange and the upstream connection, which it only holds and hands back, so
/// that tests drive it with plain objects, no sockets, and their own clock (every event that
/// needs the time is given it).
struct ExchangeStateMachine<Exchange: AnyObject, Connection: AnyObject> {
    /// How far an exchange got.
    struct Progress {
        var requestEnded = false
        /// `100 Continue` went out (the client may then send its body).
        var continueSent = false
        var responseStarted = false
        /// The client connection closes once this exchange's answer is out.
        var closeAfterResponse: Bool
        /// Sent on a reused upstream connection (or, for an idempotent request, on a fresh one
        /// with another target to try), and nothing has come back yet: if that connection turns
        /// out closed, the request is sent again on a new one.
        var mayRetryOnFreshConnection = false
        /// On such a connection, with nothing sent that was not kept to be sent again: once the
        /// request ends, it may be retried (a request without a body usually ends after the
        /// connection was leased, its head being enough to lease one).
        var retryableOnceWhole = false
        /// Body bytes arrived while the verdict or the connection was pending: they go with the
        /// head, and are kept to be sent again only if the request is whole by then.
        var bodyWaited = false
        /// Whether the upstream connection may serve another request after this one.
        var upstreamReusable = true
        /// When the upstream's answer must have started; set once the whole request is sent.
        var responseDeadline: NIODeadline?
        let expectsContinue: Bool
        /// Whether the client asked to keep its connection.
        let keepAlive: Bool
        /// A WebSocket handshake: an upstream's 101 makes the connection its tunnel.
        var opensTunnel = false
    }

    /// An exchange on its upstream connection. (A struct, not a tuple: a tuple payload was
    /// copied through the runtime's generic tuple witness.)
    struct Flight {
        let exchange: Exchange
        let connection: Connection
    }

    /// Where the exchange in flight is; how far it got is `inFlight`, beside the state rather
    /// than in it, so that a step of its progress changes a flag, not the state: changing a
    /// case's payload copies it out (retaining the exchange and its connection) and stores it
    /// back (releasing them), several times per request.
    enum State {
        case idle
        /// Waiting for the limiters' verdict.
        case limiting(Exchange)
        /// Admitted; waiting for an upstream connection.
        case connecting(Exchange)
        /// The request goes, or went, to the upstream connection; the answer comes back.
        case proxying(Flight)
        /// An upstream's 101 joined the two connections: bytes flow both ways as they come,
        /// until either side closes or both stay silent for the tunnel's idle timeout. The
        /// exchange keeps its slots all along.
        case tunnel(Exchange, Connection, idleTimeout: TimeAmount)
        /// The gateway answered before the request ended: the rest of the body is read and
        /// dropped (up to a budget), then the next request is served or the connection closes.
        case discarding(remainingBudget: Int, keepAlive: Bool)
        case closed
    }

    /// How much of an unwanted request body is read before the connection is simply closed.
    static var discardBudget: Int { 1 << 20 }

    private(set) var state = State.idle
    /// The progress of the exchange in `limiting`, `connecting` or `proxying` (see `progress`);
    /// left as the last exchange left it in any other state.
    private var inFlight = Progress(closeAfterResponse: false, expectsContinue: false, keepAlive: false)
    /// Set on SIGTERM: finish the current exchange, then close.
    private(set) var draining = false
    /// Parts of requests that arrived while another was in flight (HTTP pipelining), replayed in
    /// order once it ends. An array: empty, it costs no allocation.
    private var queue: [ClientRequestPart] = []
    /// Bytes that were no request arrived after the queued parts: answered once they are.
    private(set) var pendingRequestError: HTTP1RequestError?
    /// A stream carries one request; a connection carries many.
    let isStream: Bool
    /// The last time the client sent something, or its connection became idle.
    private(set) var lastClientActivity: NIODeadline
    /// Since when the client has taken none of what is written to it.
    private(set) var sendStalledSince: NIODeadline?
    /// Bytes a client sent after its WebSocket handshake, before the upstream's 101: they go
    /// through only if the tunnel opens. Bounded by one read: reads stop once a handshake ends.
    private var heldTunnelBytes: [ByteBuffer] = []
    /// The last time a byte went through the tunnel, either way.
    private(set) var lastTunnelActivity: NIODeadline

    init(isStream: Bool, now: NIODeadline) {
        self.isStream = isStream
        lastClientActivity = now
        lastTunnelActivity = now
    }

    var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    // MARK: request parts

    enum PartAction {
        /// An idle connection's next request: route, identify and limit it, then call
        /// `exchangeBegan` or `answeredLocally`.
        case begin(ClientRequest)
        /// Held until the exchanges before it end.
        case queued
        /// Waits with the exchange for its verdict and its upstream connection.
        case buffer(Exchange, HTTPClientRequestPart)
        /// To the upstream; with `startResponseClock`, the request is now whole. With
        /// `keepForRetry`, the part is also kept with the exchange's buffered parts, to be sent
        /// again should the connection turn out closed.
        case forward(Connection, HTTPClientRequestPart, startResponseClock: Exchange?, keepForRetry: Bool)
        /// A discarded body ended and the connection serves the next request: call `becomeIdle`.
        case discardEnded
        case close
        case none
    }

    /// - Parameter part: taken, not borrowed: a head goes on in `begin` without a copy (a copy
    ///   of a request retains each of its head's and fields' buffers).
    mutating func receive(_ part: consuming ClientRequestPart, now: NIODeadline) -> PartAction {
        lastClientActivity = now
        if !queue.isEmpty || belongsToNextRequest(part) {
            queue.append(part)
            return .queued
        }
        return handle(part)
    }

    /// The next queued part that may be handled now, removed from the queue, and what to do.
    /// A queued request waits while the client takes none of what is written to it: its answer,
    /// and the answers of every request behind it, would pile up unsent.
    mutating func nextQueuedPart(clientWritable: @autoclosure () -> Bool) -> PartAction? {
        guard let part = queue.first, !belongsToNextRequest(part) else { return nil }
        if case .head = part, !clientWritable() { return nil }
        queue.removeFirst()
        return handle(part)
    }

    var hasQueuedParts: Bool { !queue.isEmpty }

    /// A head while an exchange is in flight is a pipelined request.
    private func belongsToNextRequest(_ part: ClientRequestPart) -> Bool {
        guard case .head = part else { return false }
        switch state {
        case .idle, .closed: return false
        case .limiting, .connecting, .proxying, .discarding, .tunnel: return true
        }
    }

    private mutating func handle(_ part: consuming ClientRequestPart) -> PartAction {
        let forwarded: HTTPClientRequestPart
        let size: Int
        let isEnd: Bool
        switch part {
        case .head(let request):
            guard case .idle = state else { return .none }
            return .begin(request)
        case .body(let buffer):
            forwarded = .body(.byteBuffer(buffer))
            size = buffer.readableBytes
            isEnd = false
        case .end(let trailers):
            forwarded = .end(trailers)
            size = 0
            isEnd = true
        }
        switch state {
        case .limiting(let exchange), .connecting(let exchange):
            inFlight.requestEnded = isEnd
            if !isEnd { inFlight.bodyWaited = true }
            return .buffer(exchange, forwarded)
        case .proxying(let flight):
            guard isEnd else {
                // Body bytes sent and not kept: the request can no longer be sent again.
                inFlight.retryableOnceWhole = false
                return .forward(flight.connection, forwarded, startResponseClock: nil, keepForRetry: false)
            }
            inFlight.requestEnded = true
            inFlight.mayRetryOnFreshConnection = inFlight.retryableOnceWhole
            return .forward(
                flight.connection, forwarded, startResponseClock: inFlight.responseStarted ? nil : flight.exchange,
                keepForRetry: inFlight.retryableOnceWhole
            )
        case .discarding(let budget, let keepAlive):
            if isEnd && keepAlive { return .discardEnded }
            if isEnd || budget - size < 0 { return .close }
            state = .discarding(remainingBudget: budget - size, keepAlive: keepAlive)
            return .none
        case .idle, .closed, .tunnel:
            return .none
        }
    }

    // MARK: WebSocket tunnels

    enum TunnelBytesAction {
        /// Into the open tunnel.
        case forward(Connection)
        /// Kept until the handshake's answer: the tunnel may yet open.
        case held
        /// No tunnel can open any more, and the bytes are no request: close the connection.
        case close
    }

    /// Bytes the client sent after a WebSocket handshake.
    mutating func receiveTunnelBytes(_ bytes: ByteBuffer, now: NIODeadline) -> TunnelBytesAction {
        lastClientActivity = now
        switch state {
        case .tunnel(_, let connection, _):
            lastTunnelActivity = now
            return .forward(connection)
        default:
            // The handshake is in flight, or still queued behind a pipelined request.
            guard progress?.opensTunnel == true || !queue.isEmpty else { return .close }
            heldTunnelBytes.append(bytes)
            return .held
        }
    }

    /// The upstream answered the handshake with 101: the tunnel is open. Returns its upstream
    /// connection and the bytes the client sent meanwhile, to forward first; nil when the
    /// exchange did not ask for a tunnel or is gone.
    mutating func tunnelOpened(idleTimeout: TimeAmount, now: NIODeadline) -> (connection: Connection, held: [ByteBuffer])? {
        guard case .proxying(let flight) = state, inFlight.opensTunnel, inFlight.requestEnded else {
            return nil
        }
        state = .tunnel(flight.exchange, flight.connection, idleTimeout: idleTimeout)
        lastTunnelActivity = now
        defer { heldTunnelBytes = [] }
        return (flight.connection, heldTunnelBytes)
    }

    /// Bytes came from the upstream side of the tunnel: whether one is open to take them.
    mutating func upstreamTunnelBytes(now: NIODeadline) -> Bool {
        guard case .tunnel = state else { return false }
        lastTunnelActivity = now
        return true
    }

    /// The open tunnel's upstream connection, if one is open.
    var tunnelConnection: Connection? {
        if case .tunnel(_, let connection, _) = state { return connection }
        return nil
    }

    /// The exchange whose request is with its upstream connection, if one is.
    var proxyingExchange: Exchange? {
        if case .proxying(let flight) = state { return flight.exchange }
        return nil
    }

    /// The upstream connection bytes go to now: the exchange's, or the open tunnel's.
    var upstreamConnection: Connection? {
        switch state {
        case .proxying(let flight): return flight.connection
        case .tunnel(_, let connection, _): return connection
        default: return nil
        }
    }

    // MARK: the exchange

    /// The request was routed and identified: its limiters decide next.
    /// - Parameter opensTunnel: a WebSocket handshake, whose 101 opens a tunnel.
    mutating func exchangeBegan(_ exchange: Exchange, expectsContinue: Bool, keepAlive: Bool, closeAfterResponse: Bool, opensTunnel: Bool = false) {
        inFlight = Progress(closeAfterResponse: closeAfterResponse, expectsContinue: expectsContinue, keepAlive: keepAlive)
        inFlight.opensTunnel = opensTunnel
        state = .limiting(exchange)
    }

    enum VerdictAction {
        /// The exchange is gone (its client left): give back what the verdict holds.
        case stale
        /// Denied: answer it (`answeredLocally` follows).
        case deny
        /// Admitted: send `100 Continue` first when asked, then lease an upstream connection.
        case acquireUpstream(sendContinue: Bool)
    }

    mutating func verdict(for exchange: Exchange, admitted: Bool) -> VerdictAction {
        guard case .limiting(let current) = state, current === exchange else { return .stale }
        guard admitted else { return .deny }
        let sendContinue = inFlight.expectsContinue && !inFlight.requestEnded
        inFlight.continueSent = sendContinue
        state = .connecting(exchange)
        return .acquireUpstream(sendContinue: sendContinue)
    }

    enum AcquiredAction {
        /// The exchange is gone: the connection goes back to the pool.
        case stale
        /// Write the head and the buffered body. With `keepBodyForRetry`, keep the buffered parts:
        /// a reused connection may turn out closed, and the request is then sent again.
        case startProxying(keepBodyForRetry: Bool, requestEnded: Bool)
    }

    /// - Parameters:
    ///   - reused: whether the connection already carried a request.
    ///   - retryIfBroken: whether a fresh connection that breaks before any answer may be retried
    ///     (an idempotent request, with another target to try).
    mutating func upstreamAcquired(
        _ connection: Connection,
        for exchange: Exchange,
        reused: Bool,
        retryIfBroken: Bool = false
    ) -> AcquiredAction {
        guard case .connecting(let current) = state, current === exchange else { return .stale }
        // Body bytes that waited and are sent now without being kept (the request is not whole
        // yet) could not be sent again: sent again without them, the request would reach the
        // upstream with a body cut short.
        inFlight.retryableOnceWhole = (reused || retryIfBroken) && (inFlight.requestEnded || !inFlight.bodyWaited)
        inFlight.mayRetryOnFreshConnection = inFlight.retryableOnceWhole && inFlight.requestEnded
        state = .proxying(Flight(exchange: exchange, connection: connection))
        return .startProxying(keepBodyForRetry: inFlight.mayRetryOnFreshConnection, requestEnded: inFlight.requestEnded)
    }

    /// Whether the exchange in flight still waits for its limiters' verdict.
    func isLimiting(_ exchange: Exchange) -> Bool {
        if case .limiting(let current) = state { return current === exchange }
        return false
    }

    /// Whether a failed connect concerns the exchange in flight (which then fails).
    func isConnecting(_ exchange: Exchange) -> Bool {
        if case .connecting(let current) = state { return current === exchange }
        return false
    }

    /// The whole request is with the upstream: its answer must start by `deadline`.
    mutating func responseClockStarted(at deadline: NIODeadline) {
        guard case .proxying = state else { return }
        inFlight.responseDeadline = deadline
    }

    /// A first byte of the answer came back: the request can no longer be sent again.
    mutating func responseBytesArrived() -> Bool {
        guard case .proxying = state else { return false }
        inFlight.retryableOnceWhole = false
        guard inFlight.mayRetryOnFreshConnection else { return false }
        inFlight.mayRetryOnFreshConnection = false
        return true
    }

    /// The answer's head: whether the client connection closes after it.
    /// - Parameters:
    ///   - upstreamKeepAlive: whether the upstream keeps its connection.
    ///   - closeDelimited: whether the client can only learn the body's end by the close.
    mutating func responseHead(upstreamKeepAlive: Bool, closeDelimited: Bool) -> Bool? {
        guard case .proxying = state else { return nil }
        inFlight.responseStarted = true
        // An upstream that read a handshake and refused it is not asked again.
        inFlight.upstreamReusable = upstreamKeepAlive && !inFlight.opensTunnel
        // After an answer that came before the request's end, the connection closes
        // (`responseEnded`: the rest of the body would have nowhere to go): the head must say
        // so, or the client sends its next request into a connection about to close.
        let answeredEarly = !isStream && !inFlight.requestEnded
        inFlight.closeAfterResponse = inFlight.closeAfterResponse || draining || !inFlight.keepAlive || closeDelimited || answeredEarly
        return inFlight.closeAfterResponse
    }

    struct Finish {
        let exchange: Exchange
        let connection: Connection
        /// The upstream connection may carry another request.
        let reusable: Bool
        /// The client connection closes after the answer's end.
        let closeClient: Bool
    }

    /// The answer is complete. Then: write its end, and `becomeIdle` unless `closeClient`.
    mutating func responseEnded() -> Finish? {
        guard case .proxying(let flight) = state else { return nil }
        state = .closed
        let progress = inFlight
        return Finish(
            exchange: flight.exchange,
            connection: flight.connection,
            reusable: progress.upstreamReusable && progress.requestEnded,
            closeClient: progress.closeAfterResponse || !progress.requestEnded || draining
        )
    }

    enum UpstreamClosedAction {
        case none
        /// A connection that may be retried was closed before answering: connect anew and send
        /// it all again.
        case retry(Exchange)
        /// Half an answer went out: cut the client off (give back the slots).
        case abort(Exchange)
        /// Nothing was answered: 502.
        case fail(Exchange)
        /// The tunnel's upstream side closed: give back the slots, close the client once what
        /// came before the close is written.
        case endTunnel(Exchange)
    }

    mutating func upstreamClosed() -> UpstreamClosedAction {
        if case .tunnel(let exchange, _, _) = state {
            state = .closed
            return .endTunnel(exchange)
        }
        guard case .proxying(let flight) = state else { return .none }
        if inFlight.mayRetryOnFreshConnection {
            inFlight.mayRetryOnFreshConnection = false
            state = .connecting(flight.exchange)
            return .retry(flight.exchange)
        }
        if inFlight.responseStarted {
            state = .closed
            return .abort(flight.exchange)
        }
        return .fail(flight.exchange)
    }

    /// The progress of the exchange in flight, if any.
    var progress: Progress? {
        switch state {
        case .limiting, .connecting, .proxying: return inFlight
        case .idle, .discarding, .closed, .tunnel: return nil
        }
    }

    // MARK: local answers and idleness

    enum LocalAnswerAction {
        /// The request was whole: serve the next one (`becomeIdle`).
        case becomeIdle
        /// Read and drop the rest of its body first.
        case discard
        case close
    }

    /// Whether a local answer to this request closes the connection.
    /// - Parameters:
    ///   - mustClose: the answer requires it (CONNECT, say).
    ///   - unreadBody: the body's framing, when the request has not ended: one whose length
    ///     is past the discard budget closes the connection after the answer, which must then
    ///     say so (the client would otherwise send its next request into a connection about to
    ///     close). A chunked body's length is unknown until its end: mostly it ends within the
    ///     budget and the next request is served, so the answer says the connection stays
    ///     open, and past the budget it closes unannounced.
    func localAnswerCloses(keepAlive: Bool, bodyWithheld: Bool, mustClose: Bool, unreadBody: RequestBodyFraming? = nil) -> Bool {
        mustClose || !keepAlive || bodyWithheld || draining || (!isStream && unreadBody.map(Self.outrunsDiscardBudget) == true)
    }

    /// Whether a body so framed is known to hold more than a discarded body may take.
    private static func outrunsDiscardBudget(_ framing: RequestBodyFraming) -> Bool {
        if case .length(let length) = framing { return length > discardBudget }
        return false
    }

    /// The gateway answered the current request itself (its answer is written by now).
    /// - Parameter bodyWithheld: the client awaits `100 Continue` that never came, so its body
    ///   may never arrive.
    mutating func answeredLocally(requestEnded: Bool, bodyWithheld: Bool, close: Bool, now: NIODeadline) -> LocalAnswerAction {
        if requestEnded { return close ? .close : .becomeIdle }
        if bodyWithheld { return .close }
        state = .discarding(remainingBudget: Self.discardBudget, keepAlive: !close)
        lastClientActivity = now
        return .discard
    }

    enum IdleAction {
        /// A stream's one request is over.
        case streamDone
        case close
        /// Idle: replay queued parts (`nextQueuedPart`), then call `afterQueue`.
        case idle
    }

    mutating func becomeIdle(now: NIODeadline) -> IdleAction {
        if isStream {
            state = .closed
            return .streamDone
        }
        if draining { return .close }
        state = .idle
        lastClientActivity = now
        return .idle
    }

    /// After the queue is replayed: an unreadable request left behind is answered now.
    mutating func afterQueue() -> HTTP1RequestError? {
        guard let error = pendingRequestError, queue.isEmpty, case .idle = state else { return nil }
        pendingRequestError = nil
        return error
    }

    // MARK: closes and errors

    /// What the exchange in flight holds when the client goes: slots, and perhaps a connection.
    mutating func clientClosed() -> (exchange: Exchange?, connection: Connection?) {
        defer {
            state = .closed
            queue.removeAll()
            heldTunnelBytes = []
            sendStalledSince = nil
        }
        switch state {
        case .limiting(let exchange), .connecting(let exchange): return (exchange, nil)
        case .proxying(let flight): return (flight.exchange, flight.connection)
        case .tunnel(let exchange, let connection, _): return (exchange, connection)
        case .idle, .discarding, .closed: return (nil, nil)
        }
    }

    /// The connection closes (after the answer being written).
    mutating func closing() {
        state = .closed
        queue.removeAll()
        heldTunnelBytes = []
    }

    enum RequestErrorAction {
        /// It follows requests still to be answered: held until then.
        case deferred
        /// Answer it and close; first give back what the broken exchange holds.
        case answer(abandoning: Exchange?, Connection?)
        case close
        case none
    }

    /// The client's bytes became unreadable (the parser reads nothing after them).
    mutating func requestFailed(_ error: HTTP1RequestError) -> RequestErrorAction {
        if !queue.isEmpty {
            pendingRequestError = error
            return .deferred
        }
        switch state {
        case .limiting(let exchange), .connecting(let exchange):
            if inFlight.requestEnded {
                pendingRequestError = error
                return .deferred
            }
            state = .closed
            return .answer(abandoning: exchange, nil)
        case .proxying(let flight):
            if inFlight.requestEnded {
                pendingRequestError = error
                return .deferred
            }
            state = .closed
            return .answer(abandoning: flight.exchange, flight.connection)
        case .discarding, .tunnel:
            // The body of a request already answered, or a tunnel: nothing more to say.
            return .close
        case .idle:
            return .answer(abandoning: nil, nil)
        case .closed:
            return .none
        }
    }

    /// SIGTERM: whether to close at once (nothing in flight).
    mutating func drain() -> Bool {
        draining = true
        return isIdle
    }

    // MARK: reads, writability and deadlines

    /// What reading more of the client's bytes waits for.
    enum ReadGate {
        case closed
        /// The client taking its answers.
        case clientWritable
        /// The upstream connection taking more of the request.
        case upstreamWritable
    }

    /// Whether more of the request may be read now, as far as the exchange goes: what it waits
    /// for. (A value, not closures called back for the writabilities: around a call that takes
    /// closures, Swift copied the handler's state, in case a closure changed it.)
    var readGate: ReadGate {
        guard queue.isEmpty else { return .closed }
        if case .some = pendingRequestError { return .closed }
        switch state {
        case .idle, .discarding:
            // A client that does not read its answers sends no more requests: what it would
            // make us answer would pile up unsent.
            return .clientWritable
        case .limiting, .connecting:
            // A body waits for the verdict and the connection. A request already whole can only
            // be followed by a pipelined one, whose head is queued (stopping reads again), or,
            // after a WebSocket handshake, by the tunnel's bytes, which wait for its answer.
            // Pipelined requests are read only from a client that takes its answers, as when idle.
            return inFlight.requestEnded && !inFlight.opensTunnel ? .clientWritable : .closed
        case .proxying:
            if inFlight.opensTunnel { return .closed }
            return inFlight.requestEnded ? .clientWritable : .upstreamWritable
        case .tunnel:
            return .upstreamWritable
        case .closed:
            return .closed
        }
    }

    /// The client's connection or stream can take more, or cannot: returns a deadline to arm
    /// when a stall starts.
    mutating func clientWritabilityChanged(writable: Bool, now: NIODeadline, sendTimeout: TimeAmount) -> NIODeadline? {
        guard !writable else {
            sendStalledSince = nil
            return nil
        }
        guard sendStalledSince == nil else { return nil }
        sendStalledSince = now
        return now + sendTimeout
    }

    enum DeadlineAction {
        case none
        /// Arm the timer again for this time.
        case rearm(NIODeadline)
        /// Close the client: it stalled (send timeout, idle, a body that stopped coming).
        /// Give back what the exchange held first.
        case closeClient(Exchange?, Connection?)
        /// The upstream did not start answering in time: close it, 504. Then arm the timer again
        /// for `next` if there is one (a client that stopped reading still has its send deadline).
        case upstreamTimedOut(Exchange, Connection, next: NIODeadline?)
    }

    /// The timer fired (or was due): what has passed, and when to look again.
    mutating func deadlineReached(now: NIODeadline, idleTimeout: TimeAmount, sendTimeout: TimeAmount) -> DeadlineAction {
        var next: NIODeadline?
        if let stalled = sendStalledSince {
            if stalled + sendTimeout <= now {
                let held = clientClosed()
                return .closeClient(held.exchange, held.connection)
            }
            next = stalled + sendTimeout
        }
        func rearm(_ deadline: NIODeadline) -> DeadlineAction {
            .rearm(next.map { min($0, deadline) } ?? deadline)
        }
        switch state {
        case .idle, .discarding:
            let idleDeadline = lastClientActivity + idleTimeout
            if idleDeadline <= now {
                state = .closed
                queue.removeAll()
                return .closeClient(nil, nil)
            }
            return rearm(idleDeadline)
        case .proxying(let flight):
            let progress = inFlight
            if let deadline = progress.responseDeadline, !progress.responseStarted {
                if deadline <= now { return .upstreamTimedOut(flight.exchange, flight.connection, next: next) }
                return rearm(deadline)
            }
            if !progress.requestEnded {
                // A client that stops sending its body mid-way holds an upstream connection.
                let stallDeadline = lastClientActivity + idleTimeout
                if stallDeadline <= now {
                    let held = clientClosed()
                    return .closeClient(held.exchange, held.connection)
                }
                return rearm(stallDeadline)
            }
            return next.map { .rearm($0) } ?? .none
        case .tunnel(_, _, let idleTimeout):
            let idleDeadline = lastTunnelActivity + idleTimeout
            if idleDeadline <= now {
                let held = clientClosed()
                return .closeClient(held.exchange, held.connection)
            }
            return rearm(idleDeadline)
        case .limiting, .connecting, .closed:
            // The store and the connect attempt have deadlines of their own.
            return next.map { .rearm($0) } ?? .none
        }
    }
}
