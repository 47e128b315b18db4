import EventLoopSupport
import HTTP2Server
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RateSync

/// What one event loop owns: its upstream pools, its view of the current configuration, and its
/// client connections. Built on the loop, used only on it, so none of it needs a lock.
final class LoopResources: HTTP2ConnectionRegistry {
    private(set) var pools: [String: TargetPools] = [:]
    /// The entry of `pools` the last request used: a loop's requests mostly go to one upstream,
    /// and one that does again is spared hashing its name.
    private var lastPools: TargetPools?
    let eventLoop: any EventLoop
    /// Swapped whole on reload; a request reads it once, when it begins.
    var runtime: GatewayRuntime
    /// Live client connections, for draining.
    private var connections: [ObjectIdentifier: any DrainableConnection] = [:]
    private(set) var draining = false
    /// Requests of this loop between their head and their response's end. A plain integer:
    /// only this loop touches it; /metrics sums the loops when scraped.
    var requestsInFlight = 0
    /// What this loop's requests counted (decisions, upstream answers, latencies): /metrics
    /// sums the loops' counts when scraped.
    let counts = LoopCounts()
    /// Bearer tokens this loop has verified, for routes keyed on a claim.
    let verifiedTokens = VerifiedTokenCache()
    /// Stores' denials still in force, answered without a store call.
    let denials = DenialCache()
    /// The flushes of this loop's current batch of ready sockets, done together at its end.
    let tickFlushes: TickFlushes

    let logger: Logger
    /// This loop's access-log lines of the current tick (the process has one access log).
    private var accessLogBatch: AccessLogBatch?

    init(eventLoop: any EventLoop, runtime: GatewayRuntime, logger: Logger) {
        self.eventLoop = eventLoop
        tickFlushes = TickFlushes(eventLoop: eventLoop)
        self.runtime = runtime
        self.logger = logger
    }

    var connectionCount: Int { connections.count }

    func register(_ connection: any DrainableConnection) {
        connections[ObjectIdentifier(connection)] = connection
    }

    func unregister(_ connection: any DrainableConnection) {
        connections[ObjectIdentifier(connection)] = nil
    }

    /// Asks every connection to close once its current exchange is over.
    func drain() {
        draining = true
        for handler in connections.values { handler.drain() }
    }

    /// The loop's pools for a route's upstream, created on first use so that a reload that adds
    /// or changes an upstream needs no coordination.
    func targets(for target: GatewayRuntime.RouteTarget) -> TargetPools {
        // The pools serving these very targets are their upstream's entry: no other has them.
        if let lastPools, lastPools.serve(target.upstreamTargets, tls: target.upstreamTLS) { return lastPools }
        let name = target.upstream.name
        let previous = pools[name]
        if let previous, previous.serve(target.upstreamTargets, tls: target.upstreamTLS) {
            lastPools = previous
            return previous
        }
        // The previous pools' targets that are no longer listed (all of them after a reload) are
        // retired by the new pools.
        let pools = TargetPools(targets: target.upstreamTargets, tls: target.upstreamTLS, eventLoop: eventLoop, logger: logger, replacing: previous)
        self.pools[name] = pools
        lastPools = pools
        return pools
    }

    func accessLogBatch(for log: AccessLog) -> AccessLogBatch {
        if let accessLogBatch { return accessLogBatch }
        let batch = AccessLogBatch(log: log, eventLoop: eventLoop)
        accessLogBatch = batch
        return batch
    }

    func closeIdleConnections() {
        for pool in pools.values { pool.closeIdle() }
    }

    func flushAccessLog() {
        accessLogBatch?.flush()
    }
}

/// Finds the current loop's resources from any thread-safe context (a channel initializer).
final class LoopResourcesRegistry: Sendable {
    private let byLoop: [ObjectIdentifier: NIOLoopBoundBox<LoopResources?>]
    private let current: NIOLockedValueBox<GatewayRuntime>
    private let logger: Logger

    init(group: any EventLoopGroup, runtime: GatewayRuntime, logger: Logger) {
        self.current = NIOLockedValueBox(runtime)
        self.logger = logger
        var byLoop: [ObjectIdentifier: NIOLoopBoundBox<LoopResources?>] = [:]
        for loop in group.makeIterator() {
            byLoop[ObjectIdentifier(loop)] = .makeEmptyBox(valueType: LoopResources.self, eventLoop: loop)
        }
        self.byLoop = byLoop
    }

    /// Must be called on `loop`; builds the loop's resources on first use.
    func resources(on loop: any EventLoop) -> LoopResources {
        guard let box = byLoop[ObjectIdentifier(loop)] else {
            preconditionFailure("event loop not part of the gateway's group")
        }
        if let resources = box.value { return resources }
        let resources = LoopResources(eventLoop: loop, runtime: runtime, logger: logger)
        box.value = resources
        return resources
    }

    /// The configuration new requests use.
    var runtime: GatewayRuntime { current.withLockedValue { $0 } }

    /// Makes `runtime` the configuration of every request that begins from now on.
    func replaceRuntime(_ runtime: GatewayRuntime) -> EventLoopFuture<Void>? {
        current.withLockedValue { $0 = runtime }
        return forEachLoop { $0.runtime = runtime }
    }

    /// What /metrics reads from the loops, in one visit to each: the requests in flight, and the
    /// per-loop series' counts (`MetricSeries`), each summed.
    func metricTotals(on loop: any EventLoop) -> EventLoopFuture<(requestsInFlight: Int, counts: [Int])> {
        let perLoop = byLoop.values.map { box in
            box.eventLoop.submit { (box.value?.requestsInFlight ?? 0, box.value?.counts.values ?? []) }
        }
        return EventLoopFuture.whenAllSucceed(perLoop, on: loop).map { loops in
            (loops.reduce(0) { $0 + $1.0 }, LoopCounts.sum(loops.map(\.1)))
        }
    }

    /// Client connections open on every loop, counted on each loop.
    func connectionCount(on loop: any EventLoop) -> EventLoopFuture<Int> {
        sum(on: loop) { $0.connectionCount }
    }

    /// `count` read on each loop (0 where a loop has no resources yet), summed.
    private func sum(on loop: any EventLoop, _ count: @escaping @Sendable (LoopResources) -> Int) -> EventLoopFuture<Int> {
        let counts = byLoop.values.map { box in box.eventLoop.submit { box.value.map(count) ?? 0 } }
        return EventLoopFuture.whenAllSucceed(counts, on: loop).map { $0.reduce(0, +) }
    }

    /// Runs `body` on every loop that has resources, and completes once all have run.
    func forEachLoop(_ body: @escaping @Sendable (LoopResources) -> Void) -> EventLoopFuture<Void>? {
        let futures = byLoop.values.map { box in
            box.eventLoop.submit { if let resources = box.value { body(resources) } }
        }
        guard let first = futures.first else { return nil }
        return EventLoopFuture.andAllSucceed(futures, on: first.eventLoop)
    }
}
