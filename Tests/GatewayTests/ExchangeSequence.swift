@testable import Gateway
import NIOCore
import NIOHTTP1
import TestSupport

/// One client connection played out in a random order of everything that can happen to it:
/// the client's request parts (pipelined or not, with or without a body, with `Expect:
/// 100-continue`, perhaps followed by bytes that are no request, or by a WebSocket handshake and
/// the tunnel's bytes), verdicts (admitted, denied, or late for an exchange that is gone),
/// upstream connections leased fresh or reused (or late), connects that fail, answers that start,
/// end or are cut off, a 101 and the tunnel's bytes, upstreams that close, deadlines, a client
/// that stops reading, a drain, a client that goes; on a connection, or on an HTTP/2 stream (one
/// request).
///
/// The machine is driven the way ProxyHandler drives it (each action performed as the handler
/// performs it), and what the upstream connections and the client receive is recorded and
/// checked as it happens: a violation is noted with the events that led to it.
final class ExchangeSequence {
    final class Exchange {
        let request: Int
        let expectsContinue: Bool
        var pendingParts: [HTTPClientRequestPart] = []
        var admitted = false
        var slotsReleased = false

        init(request: Int, expectsContinue: Bool) {
            self.request = request
            self.expectsContinue = expectsContinue
        }

        func releaseSlots() { slotsReleased = true }
    }

    /// What an upstream connection received, request by request.
    enum Received: Equatable, CustomStringConvertible {
        case head(Int)
        case body(Int, Int)
        case end(Int)
        /// Bytes through a tunnel, numbered in the order the client sent them.
        case tunnel(Int)

        var description: String {
            switch self {
            case .head(let request): return "head \(request)"
            case .body(let request, let index): return "body \(request):\(index)"
            case .end(let request): return "end \(request)"
            case .tunnel(let index): return "tunnel \(index)"
            }
        }
    }

    final class Connection {
        let id: Int
        var hasBeenUsed = false
        var isOpen = true
        /// The request it carries now, from its head on.
        var request: Int?
        var received: [Received] = []
        /// In the pool, idle.
        var pooled = false

        init(id: Int) { self.id = id }
    }

    typealias Machine = ExchangeStateMachine<Exchange, Connection>

    enum ClientItem {
        case part(ClientRequestPart)
        /// Bytes that are no request.
        case unreadable
        /// Bytes after a WebSocket handshake, for its tunnel.
        case tunnelBytes(Int)
    }

    var violations: [String] = []
    var log: [String] = []
    /// How many of each kind of event happened, so that a test can see the sequences reach them.
    var counts: [String: Int] = [:]

    var random: SplitMix
    var machine: Machine
    var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let idleTimeout = TimeAmount.seconds(60)
    let sendTimeout = TimeAmount.seconds(10)
    let responseTimeout = TimeAmount.seconds(5)

    var script: [ClientItem] = []
    var cursor = 0
    var expectsContinue: [Int: Bool] = [:]
    /// How each request's body is framed, as its head says.
    var framings: [Int: RequestBodyFraming] = [:]
    var clientOpen = true
    var clientWritable = true
    var replaying = false
    var responseInProgress = false
    /// Whether the head of the answer being written said the connection closes after it.
    var answerSaysClose = false
    /// Since when the client has taken nothing written to it.
    var stalledSince: NIODeadline?
    /// The requests whose end the client sent.
    var endsSent: Set<Int> = []
    /// Body bytes read and dropped since the gateway answered a request before its end.
    var discarded = 0
    /// When the connection's one timer fires (ConnectionTimer: armed only for a nearer time).
    var timerDue: NIODeadline?

    /// The request that is a WebSocket handshake, if one is: the parser reads no request after
    /// its end, only the tunnel's bytes.
    var handshake: Int?
    /// Where the handshake's end is in the script.
    var handshakeEnd: Int?
    var parserInTunnel = false
    /// The tunnel's bytes the machine said it holds until the handshake's answer.
    var heldTunnelBytes: [Int] = []

    var exchanges: [Exchange] = []
    var connections: [Connection] = []
    var begun: [Int] = []
    /// The requests the client got an answer to, in order; -1 for the answer to bytes that are
    /// no request.
    var answers: [Int] = []

    init(seed: UInt64) {
        random = SplitMix(seed: seed)
        let isStream = Int.random(in: 0..<4, using: &random) == 0
        machine = Machine(isStream: isStream, now: now)
        armTimer(at: now + idleTimeout)
        let opensTunnel = !isStream && Int.random(in: 0..<3, using: &random) == 0
        let requests = isStream ? 1 : Int.random(in: 1...(opensTunnel ? 2 : 4), using: &random)
        if opensTunnel { handshake = requests }
        for request in 1...requests {
            let withContinue = Int.random(in: 0..<4, using: &random) == 0
            expectsContinue[request] = withContinue
            // Now and then a body larger than what a discarded body may take.
            let large = Int.random(in: 0..<8, using: &random) == 0
            let parts = (0..<Int.random(in: 0...2, using: &random)).map { index in
                var part = ByteBuffer(string: "\(request):\(index) ")
                if large { part.writeRepeatingByte(UInt8(ascii: "x"), count: Machine.discardBudget / 2 + 1) }
                return part
            }
            var fields = HTTPHeaders()
            if withContinue { fields.add(name: "expect", value: "100-continue") }
            if Int.random(in: 0..<4, using: &random) == 0 {
                fields.add(name: "transfer-encoding", value: "chunked")
            } else {
                fields.add(name: "content-length", value: "\(parts.reduce(0) { $0 + $1.readableBytes })")
            }
            script.append(.part(.head(ClientRequest(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/\(request)", headers: fields)))))
            script.append(contentsOf: parts.map { .part(.body($0)) })
            script.append(.part(.end(HTTPHeaders([("x-request", "\(request)")]))))
            if request == handshake { handshakeEnd = script.count - 1 }
        }
        if handshake != nil {
            for index in 0..<Int.random(in: 0...3, using: &random) { script.append(.tunnelBytes(index)) }
        } else if !isStream && Int.random(in: 0..<4, using: &random) == 0 {
            // Bytes that are no request, after any part from the first head on: the parser reads
            // nothing after them.
            script = Array(script[..<Int.random(in: 1...script.count, using: &random)]) + [.unreadable]
        }
    }

    // MARK: playing

    /// Plays events until the client goes (at most `steps` of them, then the client goes), then
    /// checks what must hold once everything is over.
    func play(steps: Int = 80) {
        for _ in 0..<steps {
            let events = enabledEvents()
            guard let event = events.randomElement(using: &random) else { break }
            log.append(event)
            counts[event, default: 0] += 1
            happen(event)
            // Once the client connection is closed the machine is too: nothing more can happen.
            if !clientOpen { break }
        }
        log.append("client goes")
        clientGoes()
        checkNothingIsHeld()
    }

    /// The events that may happen now, each as often as it is listed: the client's parts and
    /// the steps of an exchange more often than what ends the connection, so that sequences get
    /// far (reused connections, pipelined requests, retries) before it ends.
    func enabledEvents() -> [String] {
        var events: [String] = []
        func rarely() -> Bool { Int.random(in: 0..<12, using: &random) == 0 }
        if clientOpen {
            if cursor < script.count { events += Array(repeating: "client sends", count: 4) }
            events += ["client writability flips", "time passes"]
            if !machine.draining && rarely() { events.append("drain") }
            if rarely() { events.append("client goes") }
        }
        switch machine.state {
        case .limiting:
            events += ["admitted", "admitted", "admitted", "denied"]
        case .connecting:
            events += ["connection leased", "connection leased", "connection leased", "connect fails"]
        case .proxying(let flight):
            if flight.connection.isOpen, let progress = machine.progress {
                events.append("upstream closes")
                if progress.responseStarted {
                    events += ["answer body", "answer ends", "answer ends", "answer ends"]
                } else {
                    events += ["answer starts", "answer starts", "answer starts"]
                    if progress.opensTunnel && progress.requestEnded {
                        events += Array(repeating: "upstream switches protocols", count: 6)
                    }
                }
            }
        case .tunnel(_, let connection, _):
            if connection.isOpen { events += ["upstream closes", "upstream tunnel bytes", "upstream tunnel bytes", "upstream tunnel bytes"] }
        default:
            break
        }
        if rarely(), exchanges.contains(where: { !machine.isLimiting($0) }) { events.append("late verdict") }
        if connections.contains(where: { $0.pooled }) { events.append("pooled connection closes") }
        if rarely(), !exchanges.isEmpty { events.append("late connection") }
        return events
    }

    func happen(_ event: String) {
        switch event {
        case "client sends": clientSends()
        case "client writability flips": clientWritabilityFlips()
        case "time passes": timePasses()
        case "drain": if machine.drain() { closeConnection() }
        case "client goes": clientGoes()
        case "admitted": verdict(admitted: true)
        case "denied": verdict(admitted: false)
        case "late verdict": lateVerdict()
        case "connection leased": leaseConnection()
        case "connect fails": connectFails()
        case "answer starts": answerStarts()
        case "answer body": answerBody()
        case "answer ends": answerEnds()
        case "upstream closes": upstreamCloses()
        case "upstream switches protocols": switchProtocols()
        case "upstream tunnel bytes": if !machine.upstreamTunnelBytes(now: now) { violation("the tunnel took no bytes from its upstream") }
        case "late connection": lateConnection()
        case "pooled connection closes": pooledConnectionCloses()
        default: violation("no such event: \(event)")
        }
    }

    // MARK: the client's side

    func clientSends() {
        let item = script[cursor]
        cursor += 1
        switch item {
        case .part(let part):
            // The parser reads the tunnel's bytes, not requests, once a handshake ended.
            if cursor - 1 == handshakeEnd { parserInTunnel = true }
            if case .end(let trailers) = part, let request = trailers?.first(name: "x-request").flatMap({ Int($0) }) {
                endsSent.insert(request)
            }
            if case .discarding = machine.state, case .body(let bytes) = part {
                discarded += bytes.readableBytes
                if discarded > Machine.discardBudget { counts["discard budget spent", default: 0] += 1 }
            }
            let discardingKeepsAlive: Bool
            if case .discarding(_, let keepAlive) = machine.state { discardingKeepsAlive = keepAlive } else { discardingKeepsAlive = false }
            let action = machine.receive(part, now: now)
            // (A stream's close ends the stream alone: its answer has nothing to announce. A
            // chunked body's length was unknown when the answer went out: its close past the
            // budget is the one a head cannot foresee.)
            let request = begun.last ?? 0
            if case .close = action, discardingKeepsAlive, !machine.isStream, framings[request] != .chunked {
                violation("the connection closes while discarding request \(request)'s body (\(framings[request].map { "\($0)" } ?? "?"), \(discarded) bytes dropped) after an answer that said it stays open")
            }
            perform(action)
            if case .discarding = machine.state, discarded > Machine.discardBudget {
                violation("\(discarded) bytes of a refused body read, past the budget of \(Machine.discardBudget)")
            }
        case .tunnelBytes(let index):
            switch machine.receiveTunnelBytes(ByteBuffer(string: "t:\(index)"), now: now) {
            case .forward(let connection): writeTunnelBytes(index, to: connection)
            case .held: heldTunnelBytes.append(index)
            case .close: closeConnection()
            }
        case .unreadable:
            // The parser reads nothing after such bytes.
            cursor = script.count
            switch machine.requestFailed(.malformed("not a request")) {
            case .deferred, .none: break
            case .close: closeConnection()
            case .answer(let exchange, let connection):
                release(exchange, connection)
                answerUnreadable()
            }
        }
    }

    func perform(_ action: Machine.PartAction) {
        switch action {
        case .begin(let request):
            begin(request)
        case .queued, .none:
            break
        case .buffer(let exchange, let part):
            exchange.pendingParts.append(part)
        case .forward(let connection, let part, let whole, let keepForRetry):
            guard let exchange = machine.proxyingExchange else {
                return violation("a part forwarded with no exchange proxying")
            }
            write(part, to: connection, for: exchange)
            if keepForRetry, let whole { whole.pendingParts.append(part) }
            if whole != nil { startResponseClock() }
        case .discardEnded:
            becomeIdle()
        case .close:
            closeConnection()
        }
    }

    func begin(_ request: ClientRequest) {
        guard clientOpen else { return violation("a request begun after the connection closed") }
        if machine.draining { violation("a request begun after the drain") }
        guard let number = Int(request.uri.dropFirst()) else { return violation("no such request \(request.uri)") }
        if number != (begun.last ?? 0) + 1 { violation("request \(number) begun after \(begun)") }
        begun.append(number)
        framings[number] = request.fields.framing(version: request.version)
        let withContinue = expectsContinue[number] ?? false
        // Some requests the gateway answers itself before any limiter (no route, a bad host).
        if Int.random(in: 0..<6, using: &random) == 0 {
            answerLocally(number, expectsContinue: withContinue, keepAlive: true, requestEnded: false)
            return
        }
        let exchange = Exchange(request: number, expectsContinue: withContinue)
        exchanges.append(exchange)
        machine.exchangeBegan(
            exchange, expectsContinue: withContinue,
            keepAlive: Int.random(in: 0..<8, using: &random) != 0,
            closeAfterResponse: Int.random(in: 0..<8, using: &random) == 0,
            opensTunnel: number == handshake
        )
    }

    func clientWritabilityFlips() {
        clientWritable.toggle()
        if !clientWritable, stalledSince == nil { stalledSince = now }
        if clientWritable { stalledSince = nil }
        if let deadline = machine.clientWritabilityChanged(writable: clientWritable, now: now, sendTimeout: sendTimeout) {
            armTimer(at: deadline)
        }
        if clientWritable, machine.isIdle, machine.hasQueuedParts, !replaying { serveQueuedRequests() }
    }

    /// Time moves on; the timer fires each time it is due on the way, as ProxyHandler's does.
    func timePasses() {
        let steps: [TimeAmount] = [.milliseconds(10), .milliseconds(10), .seconds(1), .seconds(1), .seconds(6), .seconds(11), .seconds(61)]
        let until = now + steps.randomElement(using: &random)!
        while clientOpen, let due = timerDue, due <= until {
            timerDue = nil
            now = max(now, due)
            switch machine.deadlineReached(now: now, idleTimeout: idleTimeout, sendTimeout: sendTimeout) {
            case .none:
                break
            case .rearm(let deadline):
                guard deadline > now else { return violation("the timer re-armed for \(deadline), not after \(now)") }
                armTimer(at: deadline)
            case .closeClient(let exchange, let connection):
                release(exchange, connection)
                clientOpen = false
            case .upstreamTimedOut(let exchange, let connection, let next):
                close(connection)
                if let next { armTimer(at: next) }
                failExchange(exchange)
            }
        }
        now = until
        checkDeadlinesKept()
    }

    func armTimer(at deadline: NIODeadline) {
        if timerDue.map({ deadline < $0 }) ?? true { timerDue = deadline }
    }

    func startResponseClock() {
        machine.responseClockStarted(at: now + responseTimeout)
        armTimer(at: now + responseTimeout)
    }

    func clientGoes() {
        let held = machine.clientClosed()
        release(held.exchange, held.connection)
        clientOpen = false
    }

    // MARK: verdicts and connections

    func verdict(admitted: Bool) {
        guard case .limiting(let exchange) = machine.state else { return }
        exchange.admitted = admitted
        switch machine.verdict(for: exchange, admitted: admitted) {
        case .stale:
            violation("the verdict for request \(exchange.request), which is limiting, called stale")
        case .deny:
            answerLocally(for: exchange)
        case .acquireUpstream(let sendContinue):
            if !admitted { violation("a denied request \(exchange.request) goes upstream") }
            // `100 Continue` exactly when the client waits for it: asked, and its body not sent.
            let waitsForContinue = exchange.expectsContinue && !endsSent.contains(exchange.request)
            if sendContinue != waitsForContinue { violation("request \(exchange.request): 100 Continue \(sendContinue ? "sent" : "not sent")") }
        }
    }

    func lateVerdict() {
        guard let exchange = exchanges.filter({ !machine.isLimiting($0) }).randomElement(using: &random) else { return }
        let stateBefore = "\(machine.state)"
        guard case .stale = machine.verdict(for: exchange, admitted: true) else {
            return violation("a verdict for request \(exchange.request), not limiting, was taken")
        }
        if "\(machine.state)" != stateBefore { violation("a stale verdict changed the state") }
    }

    func leaseConnection() {
        guard case .connecting(let exchange) = machine.state else { return }
        let idle = connections.filter { $0.pooled }
        let connection: Connection
        if let reused = idle.randomElement(using: &random), Bool.random(using: &random) {
            connection = reused
            connection.pooled = false
        } else {
            connection = Connection(id: connections.count + 1)
            connections.append(connection)
        }
        let action = machine.upstreamAcquired(
            connection, for: exchange, reused: connection.hasBeenUsed, retryIfBroken: Bool.random(using: &random)
        )
        guard case .startProxying(let keepBodyForRetry, let requestEnded) = action else {
            return violation("the exchange connecting called stale")
        }
        if !exchange.admitted { violation("request \(exchange.request), never admitted, is sent upstream") }
        connection.request = exchange.request
        connection.received = []
        connection.hasBeenUsed = true
        connection.received.append(.head(exchange.request))
        for part in exchange.pendingParts { write(part, to: connection, for: exchange) }
        if !keepBodyForRetry { exchange.pendingParts.removeAll() }
        if requestEnded {
            startResponseClock()
        } else {
            armTimer(at: machine.lastClientActivity + idleTimeout)
        }
    }

    func connectFails() {
        guard case .connecting(let exchange) = machine.state, machine.isConnecting(exchange) else { return }
        failExchange(exchange)
    }

    // MARK: the upstream's side

    func answerStarts() {
        guard case .proxying(let flight) = machine.state else { return }
        if machine.responseBytesArrived() { flight.exchange.pendingParts.removeAll() }
        guard let closes = machine.responseHead(upstreamKeepAlive: Int.random(in: 0..<4, using: &random) != 0, closeDelimited: Int.random(in: 0..<6, using: &random) == 0) else {
            return violation("the answer's head of the exchange proxying was refused")
        }
        answered(flight.exchange.request)
        responseInProgress = true
        answerSaysClose = closes || machine.isStream
    }

    func answerBody() {
        guard case .proxying(let flight) = machine.state else { return }
        if machine.responseBytesArrived() { flight.exchange.pendingParts.removeAll() }
    }

    func answerEnds() {
        guard let finish = machine.responseEnded() else { return violation("an answer's end with no exchange proxying") }
        responseInProgress = false
        finish.exchange.releaseSlots()
        let connection = finish.connection
        if finish.reusable {
            // Back to the pool only with nothing of a request left unsent on it.
            if connection.received.last != .end(finish.exchange.request) {
                violation("connection \(connection.id) pooled after \(connection.received)")
            }
            connection.pooled = true
            connection.request = nil
        } else {
            close(connection)
        }
        // A drain begun after the head is the one close its head could not announce.
        if finish.closeClient, !answerSaysClose, !machine.draining {
            violation("the client connection closes after answering request \(finish.exchange.request), whose head said it stays open")
        }
        if finish.closeClient { closeConnection() } else { becomeIdle() }
    }

    func upstreamCloses() {
        guard let closed = machine.upstreamConnection else { return }
        closed.isOpen = false
        let action = machine.upstreamClosed()
        counts["upstream closed: \(action)".prefix { $0 != "(" }.description, default: 0] += 1
        switch action {
        case .none:
            violation("the close of the proxying exchange's connection was ignored")
        case .retry(let exchange):
            // Sent again whole: everything the closed connection got must be kept to be sent again.
            let kept = [Received.head(exchange.request)] + exchange.pendingParts.compactMap { received($0) }
            if closed.received != kept || closed.received.last != .end(exchange.request) {
                violation("request \(exchange.request) retried with \(kept) after sending \(closed.received)")
            }
        case .abort(let exchange):
            exchange.releaseSlots()
            responseInProgress = false
            clientOpen = false
        case .fail(let exchange):
            failExchange(exchange)
        case .endTunnel(let exchange):
            if exchange.request != handshake { violation("request \(exchange.request), no handshake, ended a tunnel") }
            exchange.releaseSlots()
            closeConnection()
        }
    }

    /// The upstream's 101 to the handshake: the tunnel opens, and the bytes the client sent
    /// meanwhile go first.
    func switchProtocols() {
        guard case .proxying(let flight) = machine.state else { return }
        if machine.responseBytesArrived() { flight.exchange.pendingParts.removeAll() }
        guard let opened = machine.tunnelOpened(idleTimeout: .seconds(30), now: now) else {
            return violation("the tunnel of handshake \(flight.exchange.request) did not open")
        }
        if opened.connection !== flight.connection { violation("the tunnel opened on another connection") }
        answered(flight.exchange.request)
        let held = opened.held.compactMap { Int(String(buffer: $0).dropFirst(2)) }
        if held != heldTunnelBytes { violation("the tunnel opened with \(held), the machine held \(heldTunnelBytes)") }
        heldTunnelBytes = []
        for index in held { writeTunnelBytes(index, to: opened.connection) }
        armTimer(at: now + .seconds(30))
    }

    /// A connection comes for an exchange that no longer waits for one: it goes back to the pool.
    func lateConnection() {
        guard let exchange = exchanges.filter({ !machine.isConnecting($0) }).randomElement(using: &random) else { return }
        let connection = Connection(id: connections.count + 1)
        connections.append(connection)
        guard case .stale = machine.upstreamAcquired(connection, for: exchange, reused: false) else {
            return violation("a connection for request \(exchange.request), not connecting, was taken")
        }
        connection.pooled = true
    }

    func pooledConnectionCloses() {
        guard let connection = connections.filter({ $0.pooled }).randomElement(using: &random) else { return }
        close(connection)
    }
}
