import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import RateSync

/// Limiter state in a Redis Cluster. Keys carry the identifier as their hash tag, so every
/// limiter of one request lives in one slot and is still decided by one atomic script call; the
/// requests of one event-loop tick are batched per node (one call per primary, see `decide`).
/// Each loop keeps its own slot map and a connection and circuit breaker per primary (see
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
    private let crossSlotScriptSHA = SHA1.hex(LimitScript.crossSlotSource)
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
                // Recorded under the lock: two loops connecting at once would otherwise record
                // their counts in either order, and the gauge could end on the smaller.
                nodeConnections.withLockedValue { counts in
                    counts[address, default: 0] += opened ? 1 : -1
                    Gauge(label: "ratesync_redis_node_connections", dimensions: [("store", id), ("node", address.description)])
                        .record(counts[address] ?? 0)
                }
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

    /// One script call per node for the groups of the slots it serves (each group, one request,
    /// lives in one slot), the calls to one node pipelined on its connection. A node's groups of
    /// one slot go with their keys declared; groups of several slots go in one call of the
    /// cross-slot script (see LimitScript.crossSlotSource), and any group the node could not
    /// decide there (a key it does not serve now) is sent again alone, keys declared. Groups of
    /// a slot no node is known for yet go alone too (the map is learnt on the way).
    func decide(groups: [[LimitCheck]], on eventLoop: any EventLoop) -> EventLoopFuture<[Result<[Decision], StoreFailure>]> {
        let client = clients[clientForLoop[ObjectIdentifier(eventLoop)] ?? 0].value
        var slots = [Int](repeating: -1, count: groups.count)
        // The groups of each node, nodes in order of first appearance. A tick meets a handful
        // of primaries: looking through them costs less than hashing an address per request.
        var nodes: [(address: RedisAddress, indices: [Int])] = []
        var unmapped: [Int] = []
        for (index, group) in groups.enumerated() {
            guard let first = group.first else { continue }
            let slot = LimitScript.clusterSlot(first, keyPrefix: settings.keyPrefix)
            slots[index] = slot
            guard let owner = client.knownOwner(of: slot) else {
                unmapped.append(index)
                continue
            }
            if let position = nodes.firstIndex(where: { $0.address == owner }) {
                nodes[position].indices.append(index)
            } else {
                nodes.append((owner, [index]))
            }
        }
        let deadline = NIODeadline.now() + commandTimeout
        var calls: [(indices: [Int], outcomes: EventLoopFuture<[Result<[Decision], StoreFailure>]>)] = []
        calls.reserveCapacity(nodes.count + unmapped.count)
        for (_, indices) in nodes {
            let first = slots[indices[0]]
            if indices.allSatisfy({ slots[$0] == first }) {
                calls.append((indices, callSlot(first, indices, groups, client, deadline)))
            } else {
                calls.append((indices, callNode(indices, slots, groups, client, deadline)))
            }
        }
        for (slot, indices) in Self.bySlot(unmapped, slots) {
            calls.append((indices, callSlot(slot, indices, groups, client, deadline)))
        }
        if calls.count == 1, calls[0].indices.count == groups.count {
            // The common tick: one node (or a single request).
            return calls[0].outcomes
        }
        return merge(calls, count: groups.count, on: eventLoop)
    }

    /// The outcomes of several calls, each for some of the groups, back in the groups' order:
    /// each call's outcomes are put in place as it completes (on the client's loop, where the
    /// calls run), and the last completes the whole.
    private func merge(
        _ calls: [(indices: [Int], outcomes: EventLoopFuture<[Result<[Decision], StoreFailure>]>)],
        count: Int,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<[Result<[Decision], StoreFailure>]> {
        let merged = MergedOutcomes(count: count, calls: calls.count, storeID: id)
        let promise = eventLoop.makePromise(of: [Result<[Decision], StoreFailure>].self)
        for call in calls {
            call.outcomes.assumeIsolated().whenComplete { result in
                merged.place(result, at: call.indices)
                if merged.isComplete { promise.succeed(merged.outcomes) }
            }
        }
        return promise.futureResult
    }

    /// `indices` by their slots, slots in order of first appearance.
    private static func bySlot(_ indices: [Int], _ slots: [Int]) -> [(slot: Int, indices: [Int])] {
        var order: [Int] = []
        var grouped: [Int: [Int]] = [:]
        for index in indices {
            if grouped[slots[index]] == nil { order.append(slots[index]) }
            grouped[slots[index], default: []].append(index)
        }
        return order.map { ($0, grouped[$0] ?? []) }
    }

    /// The groups of several slots one node serves, in one call of the cross-slot script; the
    /// groups it could not decide (allowed = -1: a key not served there now, or of a foreign
    /// type) are sent again alone, per slot, keys declared. One outcome per index.
    private func callNode(
        _ indices: [Int],
        _ slots: [Int],
        _ groups: [[LimitCheck]],
        _ client: ClusterLoopClient,
        _ deadline: NIODeadline
    ) -> EventLoopFuture<[Result<[Decision], StoreFailure>]> {
        let nodeGroups = indices.map { groups[$0] }
        let token = client.nextToken()
        let (tail, count) = scriptTail(nodeGroups, token: token, keysDeclared: false)
        let eventLoop = client.eventLoop
        let outcomes = eventLoop.makePromise(of: [Result<[Decision], StoreFailure>].self)
        client.runScript(sha: crossSlotScriptSHA, source: LimitScript.crossSlotSource, tail: tail, slot: slots[indices[0]], deadline: deadline)
            .assumeIsolated()
            .whenComplete { result in
                let reply: RedisValue
                switch result {
                case .success(let value):
                    reply = value
                case .failure(let error):
                    // The node failed: its requests get their fail policies, other nodes' not.
                    let failure = self.failure(error)
                    outcomes.succeed(nodeGroups.map { _ in .failure(failure) })
                    return
                }
                let decided = self.decided(reply, count: count, groups: nodeGroups, token: token, client: client)
                let undecided = decided.indices.filter { if case .failure = decided[$0] { return true } else { return false } }
                guard !undecided.isEmpty else {
                    outcomes.succeed(decided)
                    return
                }
                let retried = Self.bySlot(undecided.map { indices[$0] }, slots).map { slot, again in
                    (again, self.callSlot(slot, again, groups, client, deadline))
                }
                // Each call of callSlot answers every one of its groups, never fails.
                EventLoopFuture.whenAllSucceed(retried.map(\.1), on: eventLoop).map { perSlot in
                    var merged = decided
                    for ((again, _), results) in zip(retried, perSlot) {
                        for (index, outcome) in zip(again, results) {
                            if let position = indices.firstIndex(of: index) { merged[position] = outcome }
                        }
                    }
                    return merged
                }.cascade(to: outcomes)
            }
        return outcomes.futureResult
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
        let outcomes = client.eventLoop.makePromise(of: [Result<[Decision], StoreFailure>].self)
        client.runScript(sha: limitScriptSHA, source: LimitScript.source, tail: tail, slot: slot, deadline: deadline)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let reply):
                    outcomes.succeed(self.decided(reply, count: count, groups: slotGroups, token: token, client: client))
                case .failure(let error):
                    // The slot's node failed: its requests get their fail policies, the others not.
                    let failure = self.failure(error)
                    outcomes.succeed(slotGroups.map { _ in .failure(failure) })
                }
            }
        return outcomes.futureResult
    }

    /// The outcomes a script reply gives the groups of its call, each admitted slot on a lease.
    private func decided(
        _ reply: RedisValue,
        count: Int,
        groups: [[LimitCheck]],
        token: String,
        client: ClusterLoopClient
    ) -> [Result<[Decision], StoreFailure>] {
        LimitScript.attachLeases(
            outcomes(reply, count: count, groups: groups, token: token),
            groups: groups,
            token: token,
            keyPrefix: settings.keyPrefix,
            hashTagged: true,
            heldBy: client.leases
        )
    }

    /// The limit script's arguments after its name: key count, keys, arguments.
    /// - Parameter keysDeclared: false for the cross-slot script, whose keys are arguments:
    ///   no key is declared, and their count leads the arguments.
    private func scriptTail(_ groups: [[LimitCheck]], token: String, keysDeclared: Bool = true) -> (tail: [String], checks: Int) {
        let (keys, arguments) = LimitScript.keysAndArguments(groups: groups, keyPrefix: settings.keyPrefix, uniqueToken: token, hashTagged: true)
        var tail: [String] = []
        tail.reserveCapacity(2 + keys.count + arguments.count)
        if !keysDeclared { tail.append("0") }
        tail.append(String(keys.count))
        tail.append(contentsOf: keys)
        tail.append(contentsOf: arguments)
        return (tail, groups.reduce(0) { $0 + $1.count })
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

/// The outcomes of a tick's calls, gathered on the client's loop as the calls complete.
private final class MergedOutcomes {
    private(set) var outcomes: [Result<[Decision], StoreFailure>]
    private var callsLeft: Int
    private let storeID: String

    init(count: Int, calls: Int, storeID: String) {
        outcomes = Array(repeating: .failure(StoreFailure(storeID: storeID, reason: "no checks")), count: count)
        callsLeft = calls
        self.storeID = storeID
    }

    var isComplete: Bool { callsLeft == 0 }

    /// One call's outcomes, one per index (a call that failed as a whole fails each).
    func place(_ result: Result<[Result<[Decision], StoreFailure>], any Error>, at indices: [Int]) {
        callsLeft -= 1
        switch result {
        case .success(let results):
            for (index, outcome) in zip(indices, results) { outcomes[index] = outcome }
        case .failure(let error):
            let failure = error as? StoreFailure ?? StoreFailure(storeID: storeID, reason: "\(error)", affectsHealth: false)
            for index in indices { outcomes[index] = .failure(failure) }
        }
    }
}
