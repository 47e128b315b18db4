import NIOCore
import NIOHTTP1
import RateSync

/// A request's way in: refused methods, path and authority checks, the route, the identifier,
/// and the limiters' verdict.
extension ProxyHandler {
    func begin(_ request: ClientRequest) {
        let fields = request.fields
        let runtime = self.runtime
        resources.requestsInFlight += 1
        requestInFlight = true
        // Asked once: it decides both whom the client is and which of its claims go upstream.
        let peerIsTrustedProxy = peer.address.map(runtime.clientIPResolver.isTrusted) ?? false
        // Walked at most once per request, whether the access log or the identifier asks first.
        var resolvedClient: String?
        func client() -> String {
            if let resolvedClient { return resolvedClient }
            let address = clientIP(request.headers, peerIsTrustedProxy: peerIsTrustedProxy)
            resolvedClient = address
            return address
        }
        if accessLog != nil {
            logEntry = AccessLogEntry(start: .now(), client: client(), method: request.method.rawValue, path: request.uri)
        }
        switch request.method {
        case .TRACE:
            // What a TRACE echoes back can reveal what proxies added (nginx refuses it too).
            answerLocally(.methodNotAllowed(request.method), to: request, requestEnded: false)
            return
        case .CONNECT:
            // Never a tunnel: after CONNECT a client's bytes are no longer HTTP.
            answerLocally(.methodNotAllowed(request.method), to: request, requestEnded: false, close: true)
            return
        default:
            break
        }
        if request.method.hasLowercaseLetter {
            answerLocally(.badRequest("The method must be written in upper case."), to: request, requestEnded: false)
            return
        }
        guard let path = RequestPath(uri: request.uri) else {
            answerLocally(.badRequest("The request target is not a valid path."), to: request, requestEnded: false)
            return
        }
        let authority: String?
        switch RequestAuthority.resolve(fields, version: request.version, targetAuthority: path.authority) {
        case .success(let resolved):
            authority = resolved
        case .failure(.missingHost):
            answerLocally(.badRequest("An HTTP/1.1 request must carry a Host header."), to: request, requestEnded: false, close: true)
            return
        case .failure(.repeatedHost):
            answerLocally(.badRequest("The request carries more than one Host header."), to: request, requestEnded: false, close: true)
            return
        case .failure(.invalidHost):
            answerLocally(.badRequest("The request's host is not a valid host[:port]."), to: request, requestEnded: false, close: true)
            return
        }
        let routeIndex = runtime.router.match(path: path.routingPath, method: request.method.rawValue, host: authority)
        if runtime.router.dependsOnCase(path: path.routingPath, method: request.method.rawValue, host: authority, matched: routeIndex) {
            answerLocally(.badRequest("The path matches another route in another letter case."), to: request, requestEnded: false)
            return
        }
        if namesAnotherRoutesMethod(request, path: path, authority: authority, matched: routeIndex) {
            answerLocally(.badRequest("The request names another method that another route matches."), to: request, requestEnded: false)
            return
        }
        guard let routeIndex else {
            answerLocally(.notFound(), to: request, requestEnded: false)
            return
        }
        let target = runtime.targets[routeIndex]
        logEntry?.route = target.route.name
        logEntry?.upstream = target.upstream.name
        let identifier: String
        switch IdentifierExtractor.identify(
            rule: target.route.identifier,
            request: request,
            query: path.query,
            verifier: runtime.tokenVerifier,
            tokens: resources.verifiedTokens,
            now: SystemWallClock().now(),
            clientIP: client
        ) {
        case .identifier(let value):
            identifier = value
        case .missingPart(let what):
            answerLocally(.badRequest("\(what) is required."), to: request, requestEnded: false)
            return
        case .unverifiedToken:
            answerLocally(.unauthorized(), to: request, requestEnded: false)
            return
        case .repeatedPart(let what):
            answerLocally(.badRequest("\(what) is sent more than once."), to: request, requestEnded: false)
            return
        }

        let framing = fields.framing(version: request.version)
        let options = fields.options
        // The parser read the same: no request follows a handshake on this connection. (An
        // HTTP/2 upstream is asked no upgrade: HTTP/2 has none.)
        let opensTunnel = options.upgrade && target.upstream.wireProtocol == .http1 && WebSocketUpgrade.opensTunnel(request, framing: framing)
        if request.version.major == 2, options.upgrade, !opensTunnel {
            // An HTTP/2 client's 200 would say the tunnel opened: say plainly that it cannot.
            answerLocally(.tunnelNotAvailable(), to: request, requestEnded: true)
            return
        }
        let upstreamRequest = UpstreamRequest(
            client: request,
            options: options,
            authority: authority,
            framing: framing,
            uri: path.uri,
            peerAddress: peerText,
            clientAddress: client(),
            fromTrustedProxy: peerIsTrustedProxy,
            scheme: scheme,
            upstream: target.upstream,
            opensTunnel: opensTunnel,
            identityFields: target.identityFields
        )
        let exchange = Exchange(
            client: request,
            target: target,
            upstreamRequest: upstreamRequest,
            clientAddress: target.upstream.balance == .clientIPHash ? client() : ""
        )
        // An upgrade request answered by anything but a WebSocket's 101 (or one to another
        // protocol, forwarded as a plain request) closes its connection after the answer: what
        // the client sends after it is not HTTP.
        machine.exchangeBegan(
            exchange,
            expectsContinue: fields.expectsContinue,
            keepAlive: options.keepsAlive(request.version),
            closeAfterResponse: request.version.major == 1 && options.upgrade,
            opensTunnel: opensTunnel
        )
        if target.limiters.isEmpty {
            apply(.admit(headers: nil, held: .none), to: exchange)
            return
        }
        let cost = target.route.cost
        // A place among the waiting is taken before the stores are asked: without one, no
        // store reserves a slot this request could not wait for.
        let room = target.mayWait && runtime.waitingRoom.enter() ? runtime.waitingRoom : nil
        if let verdict = LimitEvaluation.evaluateImmediately(
            limiters: target.limiters,
            identifier: identifier,
            cost: cost,
            mayWait: room != nil
        ) {
            apply(verdict, to: exchange, waitingIn: room)
            return
        }
        guard let clientSide = self.client else {
            room?.leave()
            return
        }
        LimitEvaluation.evaluate(
            limiters: target.limiters,
            identifier: identifier,
            cost: cost,
            mayWait: room != nil,
            latency: runtime.storeLatency,
            denials: resources.denials,
            denialHits: runtime.denialCacheHits,
            counts: resources.counts,
            on: clientSide.eventLoop
        ) { verdict in self.apply(verdict, to: exchange, waitingIn: room) }
    }

    /// Whether the request names another method for itself (MethodOverride) that another route
    /// matches: an upstream that honours it would serve the request as that method, past that
    /// route's limiters.
    private func namesAnotherRoutesMethod(_ request: ClientRequest, path: RequestPath, authority: String?, matched: Int?) -> Bool {
        let inFields = request.fields.namesAnotherMethod
        guard runtime.router.someRouteNamesMethods, inFields || path.query.utf8.count > 1 else { return false }
        let methods = MethodOverride.methods(in: request.headers, namedInFields: inFields, query: path.query)
        return runtime.router.dependsOnNamedMethods(methods, path: path.routingPath, host: authority, matched: matched)
    }

    /// The client's canonical address: the peer, or whom a trusted peer forwarded for.
    private func clientIP(_ headers: ClientFields, peerIsTrustedProxy: Bool) -> String {
        guard peerIsTrustedProxy, let peer = peer.address else { return peerText }
        let forwardedFor = headers.values(named: "x-forwarded-for")
        guard !forwardedFor.isEmpty else { return peerText }
        return runtime.clientIPResolver.resolve(peer: peer, forwardedFor: forwardedFor).description
    }

    /// - Parameter room: where this request holds a place among the waiting, if it does: an
    ///   admission with a delay waits there for its time, anything else gives the place up.
    ///
    /// The verdict is taken apart once, its parts moved out: each further look at the enum
    /// copied its whole payload (headers, holdings, notes) through the runtime's generic copy.
    private func apply(_ verdict: consuming LimitVerdict, to exchange: Exchange, waitingIn room: WaitingRoom? = nil) {
        switch consume verdict {
        case .admit(let headers, let held, let notes):
            if let room {
                if held.delay > 0 {
                    guard machine.isLimiting(exchange) else {
                        // The client left while the limiter was deciding: nothing to wait for.
                        held.giveBackAll()
                        room.leave()
                        return
                    }
                    // A copy made in the closure: a `var` it captured would be boxed on the
                    // heap for every admission, delayed or not.
                    wait(held.delay, in: room, holding: held) {
                        var due = held
                        due.delay = 0
                        self.apply(.admit(headers: headers, held: due, notes: notes), to: exchange)
                    }
                    return
                }
                room.leave()
            }
            guard case .acquireUpstream(let sendContinue) = machine.verdict(for: exchange, admitted: true) else {
                // The client left while the limiter was deciding.
                held.giveBackAll()
                return
            }
            recordAdmission(notes, for: exchange.target)
            exchange.rateLimitHeaders = headers
            exchange.heldSlots = held.slots
            if sendContinue {
                client?.writeAndFlush(.head(HTTPResponseHead(version: .http1_1, status: .continue)), promise: nil)
            }
            connectUpstream(exchange)
        case .deny(let limiter, let decision, let notes):
            room?.leave()
            guard case .deny = machine.verdict(for: exchange, admitted: false) else { return }
            recordDenial(by: limiter, notes: notes, for: exchange.target)
            answerLocally(.rateLimited(limiter: limiter, decision: decision), for: exchange)
        case .unavailable(let limiter, let retryAfter):
            room?.leave()
            guard case .deny = machine.verdict(for: exchange, admitted: false) else { return }
            recordUnavailable(limiter, for: exchange.target)
            answerLocally(.limiterUnavailable(limiter: limiter, retryAfterSeconds: retryAfter), for: exchange)
        }
    }

    /// Counts an admission per limiter and notes it for the access log.
    private func recordAdmission(_ notes: VerdictNotes, for target: GatewayRuntime.RouteTarget) {
        for limiter in target.limiters {
            let id = limiter.config.id
            let outcome: GatewayMetrics.Outcome =
                notes.failedOpen.contains(id) ? .failedOpen : notes.shadowDenied.contains(id) ? .shadowDenied : .allowed
            limiter.decisions.record(outcome, in: resources.counts)
        }
        if let first = target.limiters.first {
            logEntry?.limiter = notes.failedOpen.first ?? first.config.id
            logEntry?.outcome = notes.failedOpen.isEmpty ? "allowed" : "failed_open"
        }
        note(notes)
    }

    /// Counts a denial (and the shadows that would have denied) and notes it for the access log.
    private func recordDenial(by limiter: LimiterConfig, notes: VerdictNotes, for target: GatewayRuntime.RouteTarget) {
        target.limiters.first { $0.config.id == limiter.id }?.decisions.record(.limited, in: resources.counts)
        for shadow in target.limiters where notes.shadowDenied.contains(shadow.config.id) {
            shadow.decisions.record(.shadowDenied, in: resources.counts)
        }
        logEntry?.limiter = limiter.id
        logEntry?.outcome = "limited"
        note(notes)
    }

    /// Counts a fail-closed answer and notes it for the access log.
    private func recordUnavailable(_ limiter: LimiterConfig, for target: GatewayRuntime.RouteTarget) {
        target.limiters.first { $0.config.id == limiter.id }?.decisions.record(.failedClosed, in: resources.counts)
        logEntry?.limiter = limiter.id
        logEntry?.outcome = "failed_closed"
    }

    private func note(_ notes: VerdictNotes) {
        if !notes.shadowDenied.isEmpty { logEntry?.shadowDenied = notes.shadowDenied }
        if notes.decidedLocally { logEntry?.decidedBy = "local" }
    }

    /// Holds the request until its reserved slot comes: the client's reads stay paused (the
    /// exchange awaits its verdict), and a client that leaves first gives everything back.
    private func wait(_ delay: Double, in room: WaitingRoom, holding held: Holdings, then forward: @escaping () -> Void) {
        let task = resources.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) {
            self.waiting = nil
            room.leave()
            forward()
        }
        waiting = PendingWait(task: task, room: room, held: held)
    }
}
