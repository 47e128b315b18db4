import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import RateSync

/// Everything a request needs that comes from config: built once, never mutated, read without
/// locks from every event loop (a reload builds a new one and swaps it whole).
public final class GatewayRuntime: Sendable {
    /// A class, not a struct: every exchange holds its route's target, and copying a struct of
    /// this many references would retain each of them per request.
    public final class RouteTarget: Sendable {
        public let route: GatewayConfig.Route
        public let upstream: GatewayConfig.Upstream
        public let limiters: [BoundLimiter]
        let upstreamMetrics: GatewayMetrics.UpstreamMetrics
        /// For https upstreams; built once per configuration.
        public let upstreamTLS: NIOSSLContext?
        /// The upstream's targets and their standing (shared by the routes to it).
        let upstreamTargets: UpstreamTargets
        /// Some enforced limiter has a `timeout`: its requests may wait for a slot.
        let mayWait: Bool
        /// The fields the route's identity is read from, lower case (see UpstreamRequest).
        let identityFields: [String]

        init(
            route: GatewayConfig.Route,
            upstream: GatewayConfig.Upstream,
            limiters: [BoundLimiter],
            upstreamMetrics: GatewayMetrics.UpstreamMetrics,
            upstreamTLS: NIOSSLContext?,
            upstreamTargets: UpstreamTargets,
            tokenField: String? = nil
        ) {
            self.route = route
            self.identityFields = route.identifier.fieldNames(tokenField: tokenField)
            self.upstream = upstream
            self.limiters = limiters
            self.mayWait = limiters.contains { $0.maxWait > 0 }
            self.upstreamMetrics = upstreamMetrics
            self.upstreamTLS = upstreamTLS
            self.upstreamTargets = upstreamTargets
        }
    }

    /// A limiter with the store that keeps its state and the route's counters for it.
    public final class BoundLimiter: Sendable {
        public let config: LimiterConfig
        public let store: any RateLimitStore
        let decisions: GatewayMetrics.DecisionCounters
        /// Listed in the route's `shadow`: spends as if enforced, never denies.
        public let shadow: Bool
        /// Its store's denials may be kept until their retry time (`deny_cache`, and a store
        /// that needs a round trip).
        public let denialsCacheable: Bool

        /// Seconds a request may wait for this limiter's slot: its `timeout` (a shadow never waits).
        public var maxWait: Double { shadow ? 0 : config.timeout ?? 0 }

        init(
            config: LimiterConfig,
            store: any RateLimitStore,
            decisions: GatewayMetrics.DecisionCounters,
            shadow: Bool,
            denialsCacheable: Bool
        ) {
            self.config = config
            self.store = store
            self.decisions = decisions
            self.shadow = shadow
            self.denialsCacheable = denialsCacheable
        }
    }

    public let router: Router
    public let targets: [RouteTarget]
    public let clientIPResolver: ClientIPResolver
    public let server: GatewayConfig.Server
    public let stores: [String: any RateLimitStore]
    public let metrics: GatewayMetrics
    /// Per store id: how long its calls take.
    let storeLatency: [String: LatencyHistogram]
    /// Per store id: requests denied from the denial cache, without a call.
    let denialCacheHits: [String: LoopCounter]
    public let config: LoadedConfig
    /// `[jwt]`'s keys, for routes keyed on a token claim.
    let tokenVerifier: TokenVerifier?
    /// Every upstream's targets, for health checks and metrics.
    let upstreamTargets: [UpstreamTargets]
    private let upstreamTLSContexts: [String: NIOSSLContext]
    /// The upstreams' checks and name lookups, while this configuration is the one in use.
    private let upkeep = NIOLockedValueBox<NIOLoopBoundBox<[TargetUpkeep]?>?>(nil)
    /// Bounds the requests waiting for a slot (`[server] max_waiting`).
    let waitingRoom: WaitingRoom

    public init(config: LoadedConfig, stores: [String: any RateLimitStore], metrics: GatewayMetrics = GatewayMetrics()) throws {
        self.config = config
        self.tokenVerifier = config.tokenVerifier
        var upstreamTLS: [String: NIOSSLContext] = [:]
        var upstreamTargets: [String: UpstreamTargets] = [:]
        let upstreamLogger = Logger(label: "ratesync-gateway.upstream")
        for upstream in config.gateway.upstreams.values {
            upstreamTLS[upstream.name] = try TLSContexts.upstream(upstream)
            upstreamTargets[upstream.name] = UpstreamTargets(upstream: upstream, metrics: metrics, logger: upstreamLogger)
        }
        self.metrics = metrics
        self.storeLatency = Dictionary(uniqueKeysWithValues: stores.keys.map { ($0, metrics.storeLatency($0)) })
        self.denialCacheHits = Dictionary(uniqueKeysWithValues: stores.keys.map { ($0, metrics.denialCacheHits($0)) })
        self.upstreamTargets = Array(upstreamTargets.values)
        self.upstreamTLSContexts = upstreamTLS
        self.router = Router(routes: config.gateway.routes)
        self.clientIPResolver = ClientIPResolver(trustedNetworks: config.gateway.server.trustedProxies)
        self.server = config.gateway.server
        self.waitingRoom = WaitingRoom(capacity: config.gateway.server.maxWaiting)
        self.stores = stores
        self.targets = try config.gateway.routes.map { route in
            guard let upstream = config.gateway.upstreams[route.upstream] else {
                throw RuntimeSetupError("route \"\(route.name)\" names unknown upstream \"\(route.upstream)\"")
            }
            let limiters = try route.consultedLimiters.map { name -> BoundLimiter in
                guard let limiter = config.rateSync.limiters[name] else {
                    throw RuntimeSetupError("route \"\(route.name)\" names unknown limiter \"\(name)\"")
                }
                guard let store = stores[limiter.storeID] else {
                    throw RuntimeSetupError("limiter \"\(name)\" uses store \"\(limiter.storeID)\", which was not started")
                }
                return BoundLimiter(
                    config: limiter,
                    store: store,
                    decisions: metrics.decisionCounters(route: route.name, limiter: name),
                    shadow: route.shadow.contains(name),
                    // A denial kept for its retry time would refuse a request that could wait.
                    denialsCacheable: config.gateway.storeSettings(for: limiter.storeID).denyCache && !store.decidesInProcess
                        && limiter.timeout == nil
                )
            }
            return RouteTarget(
                route: route,
                upstream: upstream,
                limiters: limiters,
                upstreamMetrics: metrics.upstreamMetrics(upstream.name),
                upstreamTLS: upstreamTLS[upstream.name],
                upstreamTargets: upstreamTargets[upstream.name] ?? UpstreamTargets(upstream: upstream, metrics: metrics, logger: upstreamLogger),
                tokenField: config.gateway.jwt?.tokenField
            )
        }
    }

    /// Starts the background work of the upstreams that need it, on `eventLoop` (once for the
    /// whole process): active checks, and the lookup of target names (see TargetUpkeep).
    public func startUpkeep(on eventLoop: any EventLoop) {
        let plans = upstreamTargets.filter(TargetUpkeep.needed(for:)).map { ($0, upstreamTLSContexts[$0.upstream.name]) }
        guard !plans.isEmpty else { return }
        let box = NIOLoopBoundBox.makeEmptyBox(valueType: [TargetUpkeep].self, eventLoop: eventLoop)
        upkeep.withLockedValue { $0 = box }
        eventLoop.execute {
            let upkeep = plans.map { TargetUpkeep(targets: $0.0, tls: $0.1, eventLoop: eventLoop) }
            box.value = upkeep
            upkeep.forEach { $0.start() }
        }
    }

    /// Stops it (this configuration was replaced).
    public func stopUpkeep() {
        guard let box = upkeep.withLockedValue({ $0 }) else { return }
        box.eventLoop.execute { box.value?.forEach { $0.stop() } }
    }
}

public struct RuntimeSetupError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
