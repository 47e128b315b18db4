import Foundation
import RateSync

/// The contents of gateway.toml: listeners, upstreams, routes and gateway-only settings.
public struct GatewayConfig: Sendable {
    public struct Server: Sendable {
        public var listen: ListenAddress
        /// Event loops (threads); by default one per core.
        public var workers: Int
        /// A client connection with no request in flight is closed after this long.
        public var idleTimeoutSeconds: Double
        /// A client that takes none of its answer for this long is closed (nginx's `send_timeout`).
        public var sendTimeoutSeconds: Double = 60
        /// Larger request heads are refused with 431.
        public var maxHeaderBytes: Int
        public var trustedProxies: [IPNetwork]
        /// Whether gateway.toml names `trusted_proxies` (else rate-sync.toml's
        /// `[fastapi] trusted_proxy_networks` does, if it names any).
        public var trustedProxiesGiven = false
        /// On SIGTERM, in-flight requests get this long to finish.
        public var drainTimeoutSeconds: Double
        /// `[server.tls]`: terminate TLS, offering h2 and http/1.1 by ALPN.
        public var tls: TLSSettings?
        /// Cleartext HTTP/2 with prior knowledge, beside HTTP/1.1, on a plain listener.
        public var h2c: Bool
        /// HTTP/2: streams one connection may have open at once.
        public var maxConcurrentStreams: Int
        /// Requests of this process that may wait at once for a slot of a limiter with a
        /// `timeout`; past it, such a request is answered at once (429 when it has no room now).
        public var maxWaiting: Int = 1024
        /// A WebSocket tunnel that carries no byte either way for this long is closed (an
        /// upstream's `websocket_idle_timeout_seconds` overrides it).
        public var websocketIdleTimeoutSeconds: Double = 300
    }

    public struct TLSSettings: Sendable, Equatable {
        /// PEM chain and key, resolved against gateway.toml's directory.
        public var certificatePath: String
        public var keyPath: String
        /// "1.2" or "1.3".
        public var minimumVersion: String
    }

    /// `[access_log]`: one JSON line per request.
    public struct AccessLogSettings: Sendable, Equatable {
        public var enabled: Bool
        /// nil: standard output.
        public var path: String?
    }

    public struct Upstream: Sendable, Equatable {
        public var name: String
        public var host: String
        public var port: Int
        /// Prepended to every forwarded path; empty for none.
        public var basePath: String
        public var connectTimeoutMs: Int
        /// How long the upstream may take to start its answer; past it the client gets 504.
        public var responseTimeoutMs: Int
        /// Idle kept-alive connections kept per event loop.
        public var maxIdleConnections: Int
        /// `https://` upstreams: TLS with SNI, verified against the system store or `caFile`.
        public var useTLS: Bool = false
        public var caFile: String?
        /// Turns certificate verification off. Named loudly on purpose; logged at start.
        public var insecureSkipTLSVerify: Bool = false
        /// The replicas requests are spread over (`targets`, or `url` alone as one target).
        public var targets: [UpstreamTarget] = []
        public var balance: Balance = .roundRobin
        /// Other targets tried when a connect fails (the request has not been sent).
        public var retries: Int = 1
        /// Connections open at once to one target from this process; a request that finds none
        /// free waits up to `connectTimeoutMs`, then gets 503.
        public var maxConnections: Int = 1024
        /// Overrides `[server] websocket_idle_timeout_seconds` for this upstream's tunnels.
        public var websocketIdleTimeoutSeconds: Double?
        /// A target given as a host name is looked up again this often (0: only at start).
        public var dnsRefreshSeconds: Double = 30
        /// What the targets speak: HTTP/1.1, or HTTP/2 (which gRPC services need).
        public var wireProtocol: WireProtocol = .http1
        public var healthCheck: HealthCheck?
        /// Passive ejection from real traffic; nil turns it off.
        public var outlier: Outlier? = Outlier()

        /// The `Host:port` form used when the client sent no Host header.
        public var authority: String { "\(host):\(port)" }

        public enum WireProtocol: String, Sendable, Equatable {
            case http1
            /// HTTP/2: ALPN `h2` over https, prior knowledge over http; one connection per
            /// target per event loop, a stream per request.
            case h2
        }

        public enum Balance: String, Sendable, Equatable {
            case roundRobin = "round_robin"
            /// The less busy of two targets picked at random (power of two choices).
            case leastRequest = "least_request"
            /// One client IP, one target (while it is in rotation).
            case clientIPHash = "client_ip_hash"
        }

        /// `[upstreams.<name>.health_check]`: active checks, one checker per target per process.
        public struct HealthCheck: Sendable, Equatable {
            public var path = "/healthz"
            public var intervalMs = 1000
            public var timeoutMs = 500
            public var unhealthyThreshold = 2
            public var healthyThreshold = 2
        }

        /// `[upstreams.<name>.outlier]`: a target whose real requests fail this many times in a row
        /// (connect errors, resets, 502/503/504) leaves rotation for `ejectSeconds`, doubled on
        /// each ejection in a row, up to 300.
        public struct Outlier: Sendable, Equatable {
            public var consecutiveFailures = 5
            public var ejectSeconds: Double = 10
        }
    }

    /// One replica of an upstream.
    public struct UpstreamTarget: Sendable, Equatable {
        /// As configured: an address, or a name (which TLS verifies and SNI names).
        public var host: String
        public var port: Int
        public var weight: Int = 1
        /// One address `host` resolved to (each is a target of its own); nil for an address
        /// literal, or a name not resolved yet (then resolved at each connect).
        public var resolvedAddress: String?

        /// What a connect dials.
        public var connectHost: String { resolvedAddress ?? host }

        /// Whether `host` is a name to resolve, not an address.
        public var isName: Bool { IPAddress(host) == nil }

        public init(host: String, port: Int, weight: Int = 1) {
            self.host = host
            self.port = port
            self.weight = weight
        }

        /// `address:port` (the resolved address when there is one), as metrics and logs name it.
        public var address: String { Self.authority(connectHost, port) }

        /// `host:port`: what a request's `Host` names.
        public var authority: String { Self.authority(host, port) }

        private static func authority(_ host: String, _ port: Int) -> String {
            host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    public struct Route: Sendable {
        public var name: String
        public var pathPrefix: String
        /// Upper-case methods; nil matches every method.
        public var methods: Set<String>?
        /// Lower-case host without port; nil matches every host.
        public var host: String?
        public var upstream: String
        public var limiters: [String]
        public var identifier: IdentifierRule
        /// Limiters evaluated and spent as if enforced that never deny (`shadow`).
        public var shadow: [String] = []
        /// Units of every limiter's budget one request spends (`cost`).
        public var cost: Int = 1

        /// Every limiter the route consults: the enforced ones, then shadows not among them.
        public var consultedLimiters: [String] {
            limiters + shadow.filter { !limiters.contains($0) }
        }
    }

    /// `[jwt]`: what a bearer token must verify against to become an identity.
    public struct JWTSettings: Sendable, Equatable {
        /// Of RS256, ES256, HS256.
        public var algorithms: Set<String>
        public var jwksPath: String?
        public var hs256Secret: String?
        public var issuer: String?
        public var audience: String?
        /// Lower-cased; nil: `Authorization: Bearer`.
        public var header: String?

        /// The field a request's token is in.
        var tokenField: String { header ?? "authorization" }
    }

    /// `[circuit_breaker]`, and per store the `[stores.<id>]` overrides.
    public struct BreakerSettings: Sendable, Equatable {
        /// Consecutive failures that open the breaker.
        public var threshold: Int
        /// Seconds the breaker stays open before one probe goes through.
        public var timeoutSeconds: Double

        public static let `default` = BreakerSettings(threshold: 5, timeoutSeconds: 60)
    }

    /// Gateway-side settings of a rate-sync.toml store (`[stores.<id>]` in gateway.toml), so that
    /// rate-sync.toml keeps rate-sync's own schema.
    public struct StoreSettings: Sendable, Equatable {
        /// How long a request waits for the store; capped by the store's `socket_timeout`.
        public var commandTimeoutMs: Int
        public var breaker: BreakerSettings
        /// `on_failure = "local"` with `local_divisor = N`: while the breaker is open, limits
        /// divided by N decide in process; nil (`on_failure = "policy"`) leaves it to the fail
        /// policies.
        public var localDivisor: Int? = nil
        /// Keep a store's denials until their retry time and answer them without asking it
        /// again (`deny_cache`, on by default).
        public var denyCache = true
    }

    public var file: String
    public var server: Server
    public var admin: ListenAddress
    public var rateSyncPath: String
    public var upstreams: [String: Upstream]
    public var routes: [Route]
    public var accessLog: AccessLogSettings
    public var circuitBreaker: BreakerSettings
    /// Only the stores gateway.toml mentions; `storeSettings(for:)` fills in defaults.
    public var stores: [String: StoreSettings]
    /// `[limiters.<id>]`: the gateway's own options of a rate-sync.toml limiter, kept out of that
    /// file so that rate-sync (which refuses keys it does not know there) can still load it.
    public var limiterOptions: [String: LimiterOptions] = [:]
    public var jwt: JWTSettings?

    public struct LimiterOptions: Sendable, Equatable {
        /// The token bucket's capacity (wins over a `burst` in rate-sync.toml).
        public var burst: Int?
        /// How long a `max_concurrent` slot's lease lasts without renewal.
        public var leaseSeconds: Double?
    }

    public static let defaultCommandTimeoutMs = 100

    public func storeSettings(for id: String) -> StoreSettings {
        stores[id] ?? StoreSettings(commandTimeoutMs: Self.defaultCommandTimeoutMs, breaker: circuitBreaker)
    }
}

/// Both files, loaded and checked against each other.
public struct LoadedConfig: Sendable {
    public var gateway: GatewayConfig
    public var rateSync: RateSyncConfig
    /// `[jwt]`'s keys, loaded; nil without `[jwt]`.
    public var tokenVerifier: TokenVerifier?

    /// Reads gateway.toml, then the rate-sync.toml it names (RATE_SYNC_CONFIG overrides the
    /// path), and throws one `ConfigError` listing the problems of both files.
    public static func load(
        gatewayPath: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> LoadedConfig {
        let gatewaySink = ConfigProblemSink(file: gatewayPath)
        let parsed = GatewayConfigParser.parse(
            try ConfigFile.read(gatewayPath),
            file: gatewayPath,
            environment: environment,
            sink: gatewaySink
        )
        var problems = gatewaySink.problems
        var rateSync: RateSyncConfig?
        do {
            rateSync = try RateSyncConfig.load(path: parsed.rateSyncPath, environment: environment)
        } catch let error as ConfigError {
            problems += error.problems
        } catch {
            problems.append(ConfigProblem(file: parsed.rateSyncPath, path: "", message: "\(error)"))
        }
        var gateway = parsed.config
        if let checked = gateway, var loaded = rateSync {
            loaded.limiters = applyLimiterOptions(checked, to: loaded.limiters, problems: &problems)
            problems += crossCheck(checked, loaded)
            rateSync = loaded
            if !checked.server.trustedProxiesGiven, let networks = loaded.trustedProxyNetworks {
                gateway?.server.trustedProxies = trustedNetworks(networks, file: parsed.rateSyncPath, problems: &problems)
            }
        }
        var tokenVerifier: TokenVerifier?
        // Keys are loaded only from a [jwt] table without problems of its own.
        if let settings = gateway?.jwt, !problems.contains(where: { $0.path.hasPrefix("jwt.") }) {
            switch TokenVerifier.load(settings) {
            case .success(let verifier):
                tokenVerifier = verifier
            case .failure(let list):
                problems += list.messages.map { ConfigProblem(file: gatewayPath, path: "jwt", message: $0) }
            }
        }
        guard problems.isEmpty, let gateway, let rateSync else {
            throw ConfigError(problems: problems)
        }
        return LoadedConfig(gateway: gateway, rateSync: rateSync, tokenVerifier: tokenVerifier)
    }

    /// gateway.toml's `[limiters.<id>]` options, applied to rate-sync.toml's limiters.
    static func applyLimiterOptions(
        _ gateway: GatewayConfig,
        to limiters: [String: LimiterConfig],
        problems: inout [ConfigProblem]
    ) -> [String: LimiterConfig] {
        var limiters = limiters
        for (id, options) in gateway.limiterOptions.sorted(by: { $0.key < $1.key }) {
            guard var limiter = limiters[id] else {
                let known = limiters.keys.sorted().joined(separator: ", ")
                problems.append(
                    ConfigProblem(
                        file: gateway.file,
                        path: "limiters.\(id)",
                        message: "no limiter named \"\(id)\" in \(gateway.rateSyncPath) (limiters defined: \(known))"
                    )
                )
                continue
            }
            if let lease = options.leaseSeconds {
                guard limiter.maxConcurrent != nil else {
                    problems.append(
                        ConfigProblem(
                            file: gateway.file,
                            path: "limiters.\(id).lease_seconds",
                            message: "lease_seconds needs a limiter with max_concurrent in \(gateway.rateSyncPath)"
                        )
                    )
                    continue
                }
                limiter.leaseSeconds = lease
            }
            if let burst = options.burst {
                guard case .tokenBucket(let rule?) = limiter.algorithm else {
                    problems.append(
                        ConfigProblem(
                            file: gateway.file,
                            path: "limiters.\(id).burst",
                            message: "burst needs a token_bucket limiter with rate_per_second in \(gateway.rateSyncPath)"
                        )
                    )
                    continue
                }
                limiter.algorithm = .tokenBucket(TokenBucketRule(ratePerSecond: rule.ratePerSecond, burst: burst))
            }
            limiters[id] = limiter
        }
        return limiters
    }

    /// rate-sync.toml's `[fastapi] trusted_proxy_networks`, each an address or a network.
    static func trustedNetworks(_ texts: [String], file: String, problems: inout [ConfigProblem]) -> [IPNetwork] {
        var networks: [IPNetwork] = []
        for (index, text) in texts.enumerated() {
            if let network = IPNetwork(text) {
                networks.append(network)
            } else {
                problems.append(
                    ConfigProblem(
                        file: file,
                        path: "fastapi.trusted_proxy_networks[\(index)]",
                        message: "expected an address or network such as 10.0.0.0/8 or fc00::/7, found \"\(text)\""
                    )
                )
            }
        }
        return networks
    }

    /// Routes may only name limiters rate-sync.toml defines, at a cost they can ever admit, and
    /// a route keyed on a token needs `[jwt]`.
    static func crossCheck(_ gateway: GatewayConfig, _ rateSync: RateSyncConfig) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        for id in gateway.stores.keys.sorted() where rateSync.stores[id] == nil {
            let known = rateSync.stores.keys.sorted().joined(separator: ", ")
            problems.append(
                ConfigProblem(
                    file: gateway.file,
                    path: "stores.\(id)",
                    message: "no store named \"\(id)\" in \(gateway.rateSyncPath) (stores defined: \(known))"
                )
            )
        }
        for (index, route) in gateway.routes.enumerated() {
            for (key, names) in [("limiters", route.limiters), ("shadow", route.shadow)] {
                for limiter in names where rateSync.limiters[limiter] == nil {
                    let known = rateSync.limiters.keys.sorted().joined(separator: ", ")
                    problems.append(
                        ConfigProblem(
                            file: gateway.file,
                            path: "routes[\(index)].\(key)",
                            message: "no limiter named \"\(limiter)\" in \(gateway.rateSyncPath) (limiters defined: \(known))"
                        )
                    )
                }
            }
            if route.identifier.usesJWT && gateway.jwt == nil {
                problems.append(
                    ConfigProblem(
                        file: gateway.file,
                        path: "routes[\(index)].identifier",
                        message: "a jwt: identifier needs a [jwt] table saying what tokens verify against"
                    )
                )
            }
            for id in route.consultedLimiters {
                guard let limiter = rateSync.limiters[id], route.cost > 1 else { continue }
                let budget = limiter.advertisedLimit
                if limiter.algorithm != .tokenBucket(nil), route.cost > budget {
                    problems.append(
                        ConfigProblem(
                            file: gateway.file,
                            path: "routes[\(index)].cost",
                            message: "cost \(route.cost) is more than limiter \"\(id)\" ever admits at once (\(budget)): no request could pass"
                        )
                    )
                }
            }
        }
        return problems
    }

    /// The stores that some route's limiter uses: the ones the gateway must reach.
    public var storesInUse: [StoreConfig] {
        let ids = Set(gateway.routes.flatMap(\.consultedLimiters).compactMap { rateSync.limiters[$0]?.storeID })
        return ids.sorted().compactMap { rateSync.stores[$0] }
    }
}
