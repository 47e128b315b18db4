import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import RateSync

/// Limiter state in a Redis Cluster. Keys carry the identifier as their hash tag, so every
/// limiter of one request lives in one slot and is still decided by one atomic script call; the
/// requests of one event-loop tick are batched per slot (one EVALSHA per slot, pipelined per
/// node). Each loop keeps its own slot map and a connection and circuit breaker per primary (see
/// `ClusterLoopClient`): a node that fails fails only the identifiers of its slots.
public final class RedisClusterStore: ConnectedRedisStore, GroupDecider {
    public let id: String
    public var engineName: String { "redis" }
    public let settings: RedisStoreSettings
    public let commandTimeout: TimeAmount

    private let clients: [NIOLoopBound<ClusterLoopClient>]
    private let batchers: [NIOLoopBound<LimitBatcher>]
    private let clientForLoop: [ObjectIdentifier: Int]
    private let limitScriptSHA = SHA1.hex(LimitScript.source)
    private let returnScriptSHA = SHA1.hex(ReturnQueue.source)
    private let connectionCount = NIOLockedValueBox(0)
    /// Per primary, its breaker's latest state on any loop (for health).
    private let nodeStates = NIOLockedValueBox<[RedisAddress: String]>([:])
    /// Per node, connections open now (every loop's): changed on connect and loss only.
    private let nodeConnections = NIOLockedValueBox<[RedisAddress: Int]>([:])

    public var openConnections: Int { connectionCount.withLockedValue { $0 } }

    public init(
        id: String,
        settings: RedisStoreSettings,
        seeds: [RedisAddress],
        commandTimeout: TimeAmount,
        breakerThreshold: Int,
        breakerTimeout: Double,
        group: any EventLoopGroup,
        logger: Logger
    ) throws {
        self.id = id
        self.settings = settings
        self.commandTimeout = commandTimeout
        let tls = try RedisStore.tlsContext(settings)
        let connectionCount = self.connectionCount
        let nodeStates = self.nodeStates
        let nodeConnections = self.nodeConnections
        let redirects = ["moved", "ask"].reduce(into: [String: Counter]()) { counters, kind in
            counters[kind] = Counter(label: "ratesync_redis_redirects_total", dimensions: [("store", id), ("kind", kind)])
        }
        let refreshes = Counter(label: "ratesync_redis_slot_map_refreshes_total", dimensions: [("store", id)])
        let events = ClusterEvents(
            connectionChanged: { address, opened in
                connectionCount.withLockedValue { $0 += opened ? 1 : -1 }
                let open = nodeConnections.withLockedValue { counts in
                    counts[address, default: 0] += opened ? 1 : -1
                    return counts[address] ?? 0
                }
                Gauge(label: "ratesync_redis_node_connections", dimensions: [("store", id), ("node", address.description)]).record(open)
            },
            redirected: { kind in redirects[kind]?.increment() },
            nodeFailed: { address in
                Counter(label: "ratesync_redis_node_failures_total", dimensions: [("store", id), ("node", address.description)]).increment()
            },
            mapRefreshed: { primaries in
                refreshes.increment()
                nodeStates.withLockedValue { states in
                    states = states.filter { primaries.contains($0.key) }
                    for primary in primaries where states[primary] == nil { states[primary] = "closed" }
                }
            },
            breakerChanged: { address, state in nodeStates.withLockedValue { $0[address] = state } }
        )
        let loops = Array(group.makeIterator())
        let instanceToken = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        var clients: [NIOLoopBound<ClusterLoopClient>] = []
        var batchers: [NIOLoopBound<LimitBatcher>] = []
        var clientForLoop: [ObjectIdentifier: Int] = [:]
        for (index, loop) in loops.enumerated() {
            clients.append(
                try loop.submit {
                    NIOLoopBound(
                        ClusterLoopClient(
                            storeID: id,
                            settings: settings,
                            seeds: seeds,
                            tls: tls,
                            eventLoop: loop,
                            logger: logger,
                            breaker: ClusterLoopClient.Breaker(threshold: breakerThreshold, timeout: breakerTimeout),
                            events: events,
                            tokenPrefix: "\(instanceToken):\(index):"
                        ).started(),
                        eventLoop: loop
                    )
                }.wait()
            )
            batchers.append(try loop.submit { NIOLoopBound(LimitBatcher(storeID: id, eventLoop: loop), eventLoop: loop) }.wait())
            clientForLoop[ObjectIdentifier(loop)] = index
        }
        self.clients = clients
        self.batchers = batchers
        self.clientForLoop = clientForLoop
    }

    /// Learns the slot map on every loop: the startup check.
    public func connect() -> EventLoopFuture<Void> {
        let maps = clients.map { bound in bound.eventLoop.flatSubmit { bound.value.refresh(force: true) } }
        return EventLoopFuture.andAllSucceed(maps, on: clients[0].eventLoop)
    }

    public func stop() {
        for bound in clients { bound.eventLoop.execute { bound.value.stop() } }
    }

    public func check(_ checks: [LimitCheck], on eventLoop: any EventLoop) -> EventLoopFuture<[Decision]> {
        batchers[clientForLoop[ObjectIdentifier(eventLoop)] ?? 0].run(from: eventLoop) { $0.submit(checks, via: self) }
    }

    /// One script call per slot among the groups (each group, one request, lives in one slot),
    /// the calls to one node pipelined on its connection. Not one call per node: a script's keys
    /// must be declared, and declared keys must share a slot; reaching other slots' keys
    /// undeclared would bypass the ASK that keeps a slot in mid-migration exact.
    func decide(groups: [[LimitCheck]], on eventLoop: any EventLoop) -> EventLoopFuture<[Result<[Decision], StoreFailure>]> {
        let client = clients[clientForLoop[ObjectIdentifier(eventLoop)] ?? 0].value
        var indicesBySlot: [Int: [Int]] = [:]
        var slots: [Int] = []
        for (index, group) in groups.enumerated() {
            guard let first = group.first else { continue }
            let slot = ClusterSlot.of(LimitScript.clusterBase(first, keyPrefix: settings.keyPrefix))
            if indicesBySlot[slot] == nil { slots.append(slot) }
            indicesBySlot[slot, default: []].append(index)
        }
        let deadline = NIODeadline.now() + commandTimeout
        if slots.count == 1, let slot = slots.first, let indices = indicesBySlot[slot], indices.count == groups.count {
            // The common tick: every request in one slot (or a single request).
            return callSlot(slot, indices, groups, client, deadline)
        }
        let calls = slots.map { slot in callSlot(slot, indicesBySlot[slot] ?? [], groups, client, deadline) }
        let storeID = id
        return EventLoopFuture.whenAllSucceed(calls, on: eventLoop).map { perSlot in
            var outcomes = [Result<[Decision], StoreFailure>](
                repeating: .failure(StoreFailure(storeID: storeID, reason: "no checks")),
                count: groups.count
            )
            for (slot, results) in zip(slots, perSlot) {
                for (index, outcome) in zip(indicesBySlot[slot] ?? [], results) { outcomes[index] = outcome }
            }
            return outcomes
        }
    }

    /// The groups of one slot in one call, following redirections: one outcome per index.
    private func callSlot(
        _ slot: Int,
        _ indices: [Int],
        _ groups: [[LimitCheck]],
        _ client: ClusterLoopClient,
        _ deadline: NIODeadline
    ) -> EventLoopFuture<[Result<[Decision], StoreFailure>]> {
        let slotGroups = indices.count == groups.count ? groups : indices.map { groups[$0] }
        let token = client.nextToken()
        let (tail, count) = scriptTail(slotGroups, token: token)
        let keyPrefix = settings.keyPrefix
        return client.runScript(sha: limitScriptSHA, source: LimitScript.source, tail: tail, slot: slot, deadline: deadline)
            .map { reply in
                LimitScript.attachLeases(self.outcomes(reply, count: count, groups: slotGroups, token: token), groups: slotGroups, token: token) {
                    check, holder in
                    let keys = LimitScript.slotKeys(check, keyPrefix: keyPrefix, hashTagged: true)
                    client.leases.hold(holder, counterKey: keys.counter, leasesKey: keys.leases, seconds: check.limiter.leaseSeconds)
                }
            }
            .flatMapErrorThrowing { error in
                // The slot's node failed: its requests get their fail policies, the others not.
                let failure = self.failure(error)
                return slotGroups.map { _ in .failure(failure) }
            }
    }

    /// The limit script's arguments after its name: key count, keys, arguments.
    private func scriptTail(_ groups: [[LimitCheck]], token: String) -> (tail: [String], checks: Int) {
        let (keys, arguments) = LimitScript.keysAndArguments(groups: groups, keyPrefix: settings.keyPrefix, uniqueToken: token, hashTagged: true)
        return ([String(keys.count)] + keys + arguments, groups.reduce(0) { $0 + $1.count })
    }

    /// One outcome per group from a script reply; an error reply or an unreadable one fails
    /// every group of the call (the node answered: not the store's health).
    private func outcomes(_ reply: RedisValue, count: Int, groups: [[LimitCheck]], token: String) -> [Result<[Decision], StoreFailure>] {
        if case .error(let message) = reply {
            let failure = StoreFailure(storeID: id, reason: "redis answered an error: \(message)", affectsHealth: false)
            return groups.map { _ in .failure(failure) }
        }
        do {
            return LimitScript.outcomes(try LimitScript.decisions(from: reply, count: count), groups: groups, storeID: id, token: token)
        } catch {
            return groups.map { _ in .failure(self.failure(error)) }
        }
    }

    private func failure(_ error: any Error) -> StoreFailure {
        error as? StoreFailure ?? StoreFailure(storeID: id, reason: "\(error)", affectsHealth: false)
    }

    /// Each slot given back in a call of its own (its keys' slot), sent once: batching and
    /// retries are the standalone store's.
    public func release(_ checks: [LimitCheck]) {
        guard let client = currentClient() else { return }
        for check in checks where check.limiter.maxConcurrent != nil {
            let keys = LimitScript.slotKeys(check, keyPrefix: settings.keyPrefix, hashTagged: true)
            runReturn(.slot(counter: keys.counter, leases: keys.leases, holder: check.lease ?? ""), slotOf: keys.counter, on: client)
            if let lease = check.lease { client.leases.drop(lease) }
        }
    }

    public func giveBack(_ checks: [LimitCheck]) {
        guard let client = currentClient() else { return }
        for check in checks {
            guard let (key, arguments) = LimitScript.giveBackKeyAndArguments(check, keyPrefix: settings.keyPrefix, hashTagged: true) else {
                continue
            }
            runReturn(.reservation(key: key, arguments: arguments), slotOf: key, on: client)
        }
    }

    private func currentClient() -> ClusterLoopClient? {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop, let index = clientForLoop[ObjectIdentifier(loop)] else { return nil }
        return clients[index].value
    }

    private func runReturn(_ item: ReturnQueue.Item, slotOf key: String, on client: ClusterLoopClient) {
        let (keys, arguments) = ReturnQueue.keysAndArguments([item])
        _ = client.runScript(
            sha: returnScriptSHA,
            source: ReturnQueue.source,
            tail: [String(keys.count)] + keys + arguments,
            slot: ClusterSlot.of(key),
            deadline: NIODeadline.now() + commandTimeout
        )
    }

    public func probe(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let deadline = NIODeadline.now() + commandTimeout
        return clients[clientForLoop[ObjectIdentifier(eventLoop)] ?? 0].run(from: eventLoop) { $0.pingPrimaries(deadline: deadline) }
    }

    public var nodeBreakers: [String: String]? {
        nodeStates.withLockedValue { states in
            Dictionary(uniqueKeysWithValues: states.map { ($0.key.description, $0.value) })
        }
    }
}
