import Logging
import NIOCore
import NIOSSL
import RateSync

/// A cluster store's view from one event loop: its own slot map, a pipelined connection per
/// primary, and a circuit breaker per primary (a dead node fails its own slots, never the
/// others'). Commands follow `MOVED` (the map is refreshed and the command retried on the right
/// node), `ASK` (`ASKING` then the command, the map untouched) and `TRYAGAIN` (retried after a
/// short pause), all within the request's deadline. Used only on its loop.
final class ClusterLoopClient: LeaseOwner {
    struct Breaker {
        let threshold: Int
        let timeout: Double
    }

    let eventLoop: any EventLoop
    private let storeID: String
    private let settings: RedisStoreSettings
    private let seeds: [RedisAddress]
    private let tls: NIOSSLContext?
    private let logger: Logger
    private let breakerSettings: Breaker
    private let events: ClusterEvents

    /// A primary's connection and breaker, on this loop.
    private final class Node {
        let client: RedisLoopClient
        var breaker: CircuitBreaker

        init(client: RedisLoopClient, breaker: CircuitBreaker) {
            self.client = client
            self.breaker = breaker
        }
    }

    private var map = SlotMap()
    private var nodes: [RedisAddress: Node] = [:]
    private var refreshInFlight: EventLoopFuture<Void>?
    /// Makes sorted-set members unique per call: this process's and loop's prefix, a counter.
    private let tokenPrefix: String
    private var calls: UInt64 = 0
    /// The leases of the slots this loop's requests hold.
    let leases: LeaseRenewer
    private let renewScriptSHA = SHA1.hex(LimitScript.renewSource)
    private var lastRefresh = NIODeadline.distantPast
    private var stopped = false

    /// Refreshes caused by failures are at most this frequent.
    static let refreshInterval: TimeAmount = .milliseconds(200)
    static let tryAgainPause: TimeAmount = .milliseconds(20)

    init(
        storeID: String,
        settings: RedisStoreSettings,
        seeds: [RedisAddress],
        tls: NIOSSLContext?,
        eventLoop: any EventLoop,
        logger: Logger,
        breaker: Breaker,
        events: ClusterEvents,
        tokenPrefix: String
    ) {
        self.tokenPrefix = tokenPrefix
        self.leases = LeaseRenewer(eventLoop: eventLoop)
        self.storeID = storeID
        self.settings = settings
        self.seeds = seeds
        self.tls = tls
        self.eventLoop = eventLoop
        self.logger = logger
        self.breakerSettings = breaker
        self.events = events
    }

    func stop() {
        stopped = true
        leases.stop()
        nodes.values.forEach { $0.client.stop() }
    }

    /// Itself, once it can renew its loop's leases (called once, on its loop).
    func started() -> ClusterLoopClient {
        leases.owner = self
        return self
    }

    func renew(_ held: LeaseRenewer.Held, holder: String, on eventLoop: any EventLoop) {
        _ = runScript(
            sha: renewScriptSHA,
            source: LimitScript.renewSource,
            tail: ["2", held.counterKey, held.leasesKey, holder, String(held.seconds)],
            slot: ClusterSlot.of(held.leasesKey),
            deadline: .now() + TimeAmount(seconds: settings.socketTimeout)
        )
    }

    /// The node serving `slot` as this loop's map has it, if it knows.
    func knownOwner(of slot: Int) -> RedisAddress? {
        map.owner(of: slot)
    }

    /// The node serving `slot`, learning the map first when it is not known yet.
    func primary(of slot: Int) -> EventLoopFuture<RedisAddress> {
        if let owner = map.owner(of: slot) { return eventLoop.makeSucceededFuture(owner) }
        return refresh(force: true).assumeIsolated().flatMapThrowing {
            guard let owner = self.map.owner(of: slot) else {
                throw StoreFailure(storeID: self.storeID, reason: "no node serves slot \(slot)", affectsHealth: false)
            }
            return owner
        }.nonisolated()
    }

    /// A token no other call of any gateway uses.
    func nextToken() -> String {
        calls &+= 1
        return tokenPrefix + String(calls)
    }

    /// Runs a script whose keys all hash to `slot` (`EVALSHA <sha> <tail>`, or `EVAL <source>
    /// <tail>` when the node answers NOSCRIPT), following redirections until `deadline`.
    func runScript(sha: String, source: String, tail: [String], slot: Int, deadline: NIODeadline) -> EventLoopFuture<RedisValue> {
        let call = ScriptCall(sha: sha, source: source, tail: tail)
        let reply = eventLoop.makePromise(of: RedisValue.self)
        if let owner = map.owner(of: slot) {
            run(call, slot: slot, on: owner, asking: false, deadline: deadline, hops: 0, reply: reply)
        } else {
            primary(of: slot).assumeIsolated().whenComplete { result in
                switch result {
                case .success(let address):
                    self.run(call, slot: slot, on: address, asking: false, deadline: deadline, hops: 0, reply: reply)
                case .failure(let error):
                    reply.fail(error)
                }
            }
        }
        return reply.futureResult
    }

    private struct ScriptCall {
        /// `EVALSHA <sha> <tail>`, built once: what every attempt sends first.
        let evalsha: [String]
        let source: String

        init(sha: String, source: String, tail: [String]) {
            var command = ["EVALSHA", sha]
            command.reserveCapacity(2 + tail.count)
            command.append(contentsOf: tail)
            evalsha = command
            self.source = source
        }

        /// `EVAL <source> <tail>`, for a node that answered NOSCRIPT.
        var eval: [String] {
            var command = evalsha
            command[0] = "EVAL"
            command[1] = source
            return command
        }
    }

    /// Sends `call` and completes `reply` with the answer, after following what the node
    /// redirects (each attempt completes the same promise: no future per step).
    private func run(
        _ call: ScriptCall,
        slot: Int,
        on address: RedisAddress,
        asking: Bool,
        deadline: NIODeadline,
        hops: Int,
        reply: EventLoopPromise<RedisValue>
    ) {
        send(call.evalsha, to: address, asking: asking, deadline: deadline) { result in
            guard case .success(let answer) = result, case .error(let message) = answer else {
                reply.completeWith(result)
                return
            }
            if message.hasPrefix("NOSCRIPT") {
                self.send(call.eval, to: address, asking: asking, deadline: deadline) { reply.completeWith($0) }
                return
            }
            let canRetry = hops < 4 && NIODeadline.now() < deadline
            if let redirect = ClusterRedirect(message), canRetry {
                switch redirect {
                case .moved(let movedSlot, let target):
                    self.events.redirected("moved")
                    self.map.move(movedSlot, to: target)
                    _ = self.refresh(force: false)
                    self.run(call, slot: slot, on: target, asking: false, deadline: deadline, hops: hops + 1, reply: reply)
                case .ask(_, let target):
                    self.events.redirected("ask")
                    self.run(call, slot: slot, on: target, asking: true, deadline: deadline, hops: hops + 1, reply: reply)
                }
                return
            }
            if message.hasPrefix("TRYAGAIN"), canRetry {
                // A multi-key command on a slot in mid-migration: the keys are moving.
                self.eventLoop.scheduleTask(in: Self.tryAgainPause) {}.futureResult.assumeIsolated().whenComplete { paused in
                    switch paused {
                    case .success:
                        self.run(call, slot: slot, on: address, asking: asking, deadline: deadline, hops: hops + 1, reply: reply)
                    case .failure(let error):
                        reply.fail(error)
                    }
                }
                return
            }
            if message.hasPrefix("CLUSTERDOWN") || message.hasPrefix("READONLY") {
                _ = self.refresh(force: false)
            }
            reply.succeed(answer)
        }
    }

    /// One command to one node, through its breaker, connecting first if need be (bounded by
    /// the deadline). With `asking`, `ASKING` leaves in the same write, just before it.
    /// `answered` is told the reply, or the failure as a `StoreFailure`, once.
    private func send(
        _ command: [String],
        to address: RedisAddress,
        asking: Bool,
        deadline: NIODeadline,
        answered: @escaping (Result<RedisValue, any Error>) -> Void
    ) {
        let node = self.node(address)
        let (admission, transition) = node.breaker.admit(now: SystemWallClock().now())
        report(transition, address)
        if case .reject(let retryAfter) = admission {
            answered(.failure(StoreFailure(storeID: storeID, reason: "node \(address): circuit breaker open", retryAfter: retryAfter, affectsHealth: false)))
            return
        }
        let client = node.client
        let reply: EventLoopFuture<RedisValue>
        if client.isConnected {
            if asking { _ = client.send(["ASKING"], timeout: deadline - .now()) }
            reply = client.send(command, timeout: max(.milliseconds(1), deadline - .now()))
        } else {
            let remaining = deadline - .now()
            reply = connected(client, within: remaining).assumeIsolated().flatMap { () -> EventLoopFuture<RedisValue> in
                if asking { _ = client.send(["ASKING"], timeout: remaining) }
                return client.send(command, timeout: max(.milliseconds(1), deadline - .now()))
            }.nonisolated()
        }
        reply.assumeIsolated().whenComplete { result in
            let transition: CircuitBreaker.Transition?
            switch result {
            case .success:
                transition = node.breaker.recordSuccess()
                answered(result)
            case .failure(let error):
                transition = node.breaker.recordFailure(now: SystemWallClock().now(), reason: "\(error)")
                self.events.nodeFailed(address)
                // The node may be gone for good (a failover): learn who serves its slots now.
                _ = self.refresh(force: false)
                answered(.failure(error as? StoreFailure ?? StoreFailure(storeID: self.storeID, reason: "node \(address): \(error)", affectsHealth: false)))
            }
            self.report(transition, address)
        }
    }

    private func send(_ command: [String], to address: RedisAddress, asking: Bool, deadline: NIODeadline) -> EventLoopFuture<RedisValue> {
        let promise = eventLoop.makePromise(of: RedisValue.self)
        send(command, to: address, asking: asking, deadline: deadline) { promise.completeWith($0) }
        return promise.futureResult
    }

    private func report(_ transition: CircuitBreaker.Transition?, _ address: RedisAddress) {
        guard let transition else { return }
        events.breakerChanged(address, transition.to)
        let metadata: Logger.Metadata = ["store": "\(storeID)", "node": "\(address)", "to": "\(transition.to)", "reason": "\(transition.reason)"]
        if transition.to == "open" {
            logger.warning("cluster node circuit breaker opened", metadata: metadata)
        } else {
            logger.info("cluster node circuit breaker \(transition.to)", metadata: metadata)
        }
    }

    private func node(_ address: RedisAddress) -> Node {
        if let node = nodes[address] { return node }
        let client = RedisLoopClient(
            storeID: storeID,
            settings: settings,
            tls: tls,
            eventLoop: eventLoop,
            logger: logger,
            onConnectionChange: { [events] opened in events.connectionChanged(address, opened) },
            address: address
        )
        let node = Node(client: client, breaker: CircuitBreaker(threshold: breakerSettings.threshold, timeout: breakerSettings.timeout))
        nodes[address] = node
        return node
    }

    /// Completes once the client is connected, or fails past `within`.
    private func connected(_ client: RedisLoopClient, within: TimeAmount) -> EventLoopFuture<Void> {
        if client.isConnected { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        let timer = eventLoop.scheduleTask(in: max(.milliseconds(1), within)) {
            promise.fail(RedisConnectionError.timedOut)
        }
        client.connect { result in
            timer.cancel()
            switch result {
            case .success: promise.succeed(())
            case .failure(let error): promise.fail(error)
            }
        }
        return promise.futureResult
    }

    /// Asks the known primaries, then the seeds, for `CLUSTER SLOTS` until one answers. At most
    /// one refresh is in flight; one not forced waits `refreshInterval` after the last.
    @discardableResult
    func refresh(force: Bool) -> EventLoopFuture<Void> {
        if let refreshInFlight { return refreshInFlight }
        guard force || NIODeadline.now() - lastRefresh >= Self.refreshInterval, !stopped else {
            return eventLoop.makeSucceededVoidFuture()
        }
        lastRefresh = .now()
        var candidates = Array(map.primaries).sorted { $0.description < $1.description }
        for seed in seeds where !candidates.contains(seed) { candidates.append(seed) }
        let promise = eventLoop.makePromise(of: Void.self)
        refreshInFlight = promise.futureResult
        var failures: [String] = []
        let timeout = TimeAmount(seconds: settings.socketTimeout)
        func ask(_ index: Int) {
            guard index < candidates.count else {
                refreshInFlight = nil
                promise.fail(StoreFailure(storeID: storeID, reason: "no node gave the slot map (\(failures.joined(separator: "; ")))"))
                return
            }
            let address = candidates[index]
            let client = node(address).client
            connected(client, within: timeout).assumeIsolated().flatMap { client.send(["CLUSTER", "SLOTS"], timeout: timeout) }
                .whenComplete { result in
                    if case .success(let reply) = result, let fresh = SlotMap(clusterSlots: reply, fallbackHost: address.host), !fresh.isEmpty {
                        self.adopt(fresh)
                        self.refreshInFlight = nil
                        promise.succeed(())
                    } else {
                        failures.append("\(address): \(result)")
                        ask(index + 1)
                    }
                }
        }
        ask(0)
        return promise.futureResult
    }

    private func adopt(_ fresh: SlotMap) {
        map = fresh
        events.mapRefreshed(fresh.primaries)
        // Connections to nodes that serve nothing any more are closed.
        for (address, node) in nodes where !fresh.primaries.contains(address) {
            node.client.stop()
            nodes[address] = nil
        }
    }

    /// Every primary's PING: the health probe.
    func pingPrimaries(deadline: NIODeadline) -> EventLoopFuture<Void> {
        let storeID = self.storeID
        return refresh(force: true).assumeIsolated().flatMap {
            let pings = self.map.primaries.map { address in
                self.send(["PING"], to: address, asking: false, deadline: deadline).flatMapThrowing { reply -> Void in
                    if case .error(let message) = reply { throw StoreFailure(storeID: storeID, reason: "node \(address): \(message)") }
                }
            }
            return EventLoopFuture.andAllSucceed(pings, on: self.eventLoop)
        }.nonisolated()
    }
}

/// What a cluster store's loops tell the process: connection counts, failures, redirections,
/// map refreshes and node breaker states (for health and metrics). Thread-safe; called rarely
/// per request (only on failures and redirections).
final class ClusterEvents: Sendable {
    let connectionChanged: @Sendable (RedisAddress, Bool) -> Void
    let redirected: @Sendable (_ kind: String) -> Void
    let nodeFailed: @Sendable (RedisAddress) -> Void
    let mapRefreshed: @Sendable (_ primaries: Set<RedisAddress>) -> Void
    let breakerChanged: @Sendable (RedisAddress, _ to: String) -> Void

    init(
        connectionChanged: @escaping @Sendable (RedisAddress, Bool) -> Void,
        redirected: @escaping @Sendable (String) -> Void,
        nodeFailed: @escaping @Sendable (RedisAddress) -> Void,
        mapRefreshed: @escaping @Sendable (Set<RedisAddress>) -> Void,
        breakerChanged: @escaping @Sendable (RedisAddress, String) -> Void
    ) {
        self.connectionChanged = connectionChanged
        self.redirected = redirected
        self.nodeFailed = nodeFailed
        self.mapRefreshed = mapRefreshed
        self.breakerChanged = breakerChanged
    }
}
