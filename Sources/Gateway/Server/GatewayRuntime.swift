import RateSync

/// Everything a request needs that comes from config: built once, never mutated, read without
/// locks from every event loop (a reload builds a new one and swaps it whole).
public final class GatewayRuntime: Sendable {
    public struct RouteTarget: Sendable {
        public let route: GatewayConfig.Route
        public let upstream: GatewayConfig.Upstream
        public let limiters: [BoundLimiter]
    }

    /// A limiter with the store that keeps its state.
    public struct BoundLimiter: Sendable {
        public let config: LimiterConfig
        public let store: any RateLimitStore
    }

    public let router: Router
    public let targets: [RouteTarget]
    public let clientIPResolver: ClientIPResolver
    public let server: GatewayConfig.Server
    public let stores: [String: any RateLimitStore]

    public init(config: LoadedConfig, stores: [String: any RateLimitStore]) throws {
        self.router = Router(routes: config.gateway.routes)
        self.clientIPResolver = ClientIPResolver(trustedNetworks: config.gateway.server.trustedProxies)
        self.server = config.gateway.server
        self.stores = stores
        self.targets = try config.gateway.routes.map { route in
            guard let upstream = config.gateway.upstreams[route.upstream] else {
                throw RuntimeSetupError("route \"\(route.name)\" names unknown upstream \"\(route.upstream)\"")
            }
            let limiters = try route.limiters.map { name -> BoundLimiter in
                guard let limiter = config.rateSync.limiters[name] else {
                    throw RuntimeSetupError("route \"\(route.name)\" names unknown limiter \"\(name)\"")
                }
                guard let store = stores[limiter.storeID] else {
                    throw RuntimeSetupError("limiter \"\(name)\" uses store \"\(limiter.storeID)\", which was not started")
                }
                return BoundLimiter(config: limiter, store: store)
            }
            return RouteTarget(route: route, upstream: upstream, limiters: limiters)
        }
    }
}

public struct RuntimeSetupError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
