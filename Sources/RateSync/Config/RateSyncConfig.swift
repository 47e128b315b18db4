import Foundation

/// The contents of rate-sync.toml: stores and limiters, in rate-sync's own schema, with the
/// production deployment guide's alternative spellings (`strategy`, `store_id`,
/// `max_connections`) accepted too.
public struct RateSyncConfig: Sendable, Equatable {
    public var stores: [String: StoreConfig]
    public var limiters: [String: LimiterConfig]
    /// `[fastapi] trusted_proxy_networks`: the proxies rate-sync's FastAPI helper trusts, as
    /// written (the gateway checks their syntax and uses them when gateway.toml names none).
    public var trustedProxyNetworks: [String]?

    public init(stores: [String: StoreConfig], limiters: [String: LimiterConfig], trustedProxyNetworks: [String]? = nil) {
        self.stores = stores
        self.limiters = limiters
        self.trustedProxyNetworks = trustedProxyNetworks
    }

    /// Reads and validates a file; throws `ConfigError` listing every problem.
    public static func load(
        path: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> RateSyncConfig {
        let text = try ConfigFile.read(path)
        return try parse(text, file: path, environment: environment)
    }

    public static func parse(
        _ text: String,
        file: String,
        environment: [String: String]
    ) throws -> RateSyncConfig {
        let sink = ConfigProblemSink(file: file)
        guard let root = TOMLFileLoader.parse(text, file: file, environment: environment, sink: sink) else {
            try sink.throwIfAny()
            return RateSyncConfig(stores: [:], limiters: [:])
        }
        let reader = TableReader(root, path: "", sink: sink)
        var stores: [String: StoreConfig] = [:]
        let storeTables = reader.namedTables("stores")
        for (id, table) in storeTables {
            if let store = readStore(id: id, table) { stores[id] = store }
        }
        // A store with its own problems still exists as far as its limiters are concerned, so
        // one mistake is reported once.
        let declaredStores = Set(storeTables.map(\.name))
        var limiters: [String: LimiterConfig] = [:]
        for (id, table) in reader.namedTables("limiters") {
            if let limiter = readLimiter(id: id, table, declaredStores: declaredStores) { limiters[id] = limiter }
        }
        for (id, limiter) in limiters where id.contains("{") || id.contains("}") {
            if case .redis(let settings)? = stores[limiter.storeID]?.engine, settings.clusterSeeds != nil {
                sink.report("limiters.\(id)", "in cluster mode, a limiter name cannot hold braces: they would change the keys' hash tag")
            }
        }
        if !reader.has("limiters") {
            sink.report("limiters", "no limiters defined (add a [limiters.<name>] table)")
        }
        // rate-sync's FastAPI integration: the one key it reads there.
        var trustedProxyNetworks: [String]?
        if let fastapi = reader.table("fastapi") {
            trustedProxyNetworks = fastapi.stringArray("trusted_proxy_networks")
            fastapi.rejectUnknownKeys()
        }
        reader.rejectUnknownKeys()
        try sink.throwIfAny()
        return RateSyncConfig(stores: stores, limiters: limiters, trustedProxyNetworks: trustedProxyNetworks)
    }

    private static func readStore(id: String, _ table: TableReader) -> StoreConfig? {
        let engineKey = table.spellingOf("engine", "strategy")
        let engineName = table.string(engineKey, required: true)
        // Keys rate-sync accepts for stores of other engines are still read, so they are not
        // reported as unknown; engine-specific ones are checked below.
        switch engineName {
        case "memory":
            table.rejectUnknownKeys()
            return StoreConfig(id: id, engine: .memory)
        case "redis":
            let settings = readRedisSettings(table)
            table.rejectUnknownKeys()
            return settings.map { StoreConfig(id: id, engine: .redis($0)) }
        case nil:
            return nil
        case "postgres"?:
            let settings = readPostgresSettings(table)
            table.rejectUnknownKeys()
            return settings.map { StoreConfig(id: id, engine: .postgres($0)) }
        case let other?:
            table.report(engineKey, "expected \"redis\", \"postgres\" or \"memory\", found \"\(other)\"")
            return nil
        }
    }

    private static func readPostgresSettings(_ table: TableReader) -> PostgresStoreSettings? {
        var url: PostgresURL?
        if let text = table.string("url", required: true) {
            do {
                url = try PostgresURL.parse(text)
            } catch {
                // The message never repeats the URL: it may carry a password.
                table.report("url", error.description)
            }
        }
        let tableName = table.string("table_name") ?? "rate_limiter_state"
        let schemaName = table.string("schema_name") ?? "public"
        for (key, name) in [("table_name", tableName), ("schema_name", schemaName)] where !PostgresStoreSettings.isPlainIdentifier(name) {
            table.report(key, "expected a plain SQL identifier (letters, digits and _, not starting with a digit, at most 63 bytes), found \"\(name)\"")
        }
        let autoCreate = table.bool("auto_create") ?? false
        let poolMin = table.integer("pool_min_size", minimum: 0, maximum: 10_000) ?? 2
        let poolMax = table.integer("pool_max_size", minimum: 1, maximum: 10_000) ?? 10
        if poolMin > poolMax {
            table.report("pool_min_size", "expected at most the pool's maximum size (\(poolMax)), found \(poolMin)")
        }
        var margin = table.double("timing_margin_ms", maximum: 60_000) ?? 10
        if margin < 0 {
            table.report("timing_margin_ms", "expected a number of at least 0, found \(margin)")
            margin = 0
        }
        guard let url else { return nil }
        return PostgresStoreSettings(
            url: url,
            tableName: tableName,
            schemaName: schemaName,
            autoCreate: autoCreate,
            poolMinSize: poolMin,
            poolMaxSize: poolMax,
            timingMarginMs: margin
        )
    }

    private static func readRedisSettings(_ table: TableReader) -> RedisStoreSettings? {
        let mode = table.string("mode") ?? "standalone"
        var sentinel: SentinelSettings?
        switch mode {
        case "standalone":
            break
        case "sentinel":
            sentinel = readSentinel(table)
            guard sentinel != nil else { return nil }
        case "cluster":
            break
        default:
            table.report("mode", "expected \"standalone\", \"sentinel\" or \"cluster\", found \"\(mode)\"")
            return nil
        }
        var url: RedisURL?
        // With sentinels, the URL (optional) carries only the scheme, credentials and database.
        if sentinel != nil && !table.has("url") {
            url = RedisURL(useTLS: false, host: "sentinel-managed", port: 6379)
        }
        var seeds: [RedisAddress]?
        if mode == "cluster" {
            seeds = readClusterNodes(table)
            guard seeds != nil else { return nil }
            if !table.has("url") { url = RedisURL(useTLS: false, host: "cluster", port: 6379) }
        }
        if url == nil, let text = table.string("url", required: true) {
            do {
                url = try RedisURL.parse(text)
            } catch {
                // The message never repeats the URL: it may carry a password.
                table.report("url", error.description)
            }
        }
        if let db = table.integer("db", minimum: 0) { url?.database = db }
        if let password = table.string("password") { url?.password = password }
        if let username = table.string("username") { url?.username = username }
        let keyPrefix = table.string("key_prefix") ?? "rate_limit"
        let poolMin = table.integer("pool_min_size", minimum: 0) ?? 1
        let poolMax = table.integer(table.spellingOf("pool_max_size", "max_connections"), minimum: 1) ?? 10
        if poolMin > poolMax {
            table.report("pool_min_size", "expected at most the pool's maximum size (\(poolMax)), found \(poolMin)")
        }
        let socketTimeout = table.double("socket_timeout", positive: true, maximum: 3600) ?? 5
        let connectTimeout = table.double("socket_connect_timeout", positive: true, maximum: 3600) ?? 5
        let margin = table.double("timing_margin_ms")
        let caFile = table.string("ca_file")
        guard let url else { return nil }
        var settings = RedisStoreSettings(
            url: url,
            keyPrefix: keyPrefix,
            poolMinSize: poolMin,
            poolMaxSize: poolMax,
            socketTimeout: socketTimeout,
            socketConnectTimeout: connectTimeout,
            timingMarginMs: margin,
            caFile: caFile
        )
        settings.sentinel = sentinel
        if var seeds {
            // A url names one more seed.
            let urlSeed = RedisAddress(host: settings.url.host, port: settings.url.port)
            if table.has("url"), !seeds.contains(urlSeed) { seeds.append(urlSeed) }
            settings.clusterSeeds = seeds
            if keyPrefix.contains("{") || keyPrefix.contains("}") {
                table.report("key_prefix", "in cluster mode, braces would change which part of a key is its hash tag")
            }
        }
        return settings
    }

    /// `nodes = ["host:port", ...]`: seeds of a cluster; `url` alone is one seed too.
    private static func readClusterNodes(_ table: TableReader) -> [RedisAddress]? {
        var addresses: [RedisAddress] = []
        for (index, text) in (table.stringArray("nodes") ?? []).enumerated() {
            guard let address = RedisAddress(text) else {
                table.sink.report("\(table.fieldPath("nodes"))[\(index)]", "expected host:port, found \"\(text)\"")
                return nil
            }
            addresses.append(address)
        }
        if addresses.isEmpty && !table.has("url") {
            table.report("nodes", "cluster mode needs nodes = [\"host:port\", ...] (or a url naming one node)")
            return nil
        }
        return addresses
    }

    /// `sentinels = ["host:port", ...]`, `master_name`, and `sentinel_password` when they
    /// require AUTH.
    private static func readSentinel(_ table: TableReader) -> SentinelSettings? {
        let texts = table.stringArray("sentinels")
        let masterName = table.string("master_name", required: true)
        let password = table.string("sentinel_password")
        guard let texts else {
            table.report("sentinels", "sentinel mode needs sentinels = [\"host:port\", ...]")
            return nil
        }
        var addresses: [RedisAddress] = []
        for (index, text) in texts.enumerated() {
            guard let address = RedisAddress(text) else {
                table.sink.report("\(table.fieldPath("sentinels"))[\(index)]", "expected host:port, found \"\(text)\"")
                return nil
            }
            addresses.append(address)
        }
        if addresses.isEmpty { table.report("sentinels", "expected at least one sentinel") }
        guard let masterName, !addresses.isEmpty else { return nil }
        if masterName.isEmpty { table.report("master_name", "expected the name the sentinels monitor the primary by") }
        return SentinelSettings(sentinels: addresses, masterName: masterName, password: password)
    }

    private static func readLimiter(
        id: String,
        _ table: TableReader,
        declaredStores: Set<String>
    ) -> LimiterConfig? {
        let storeKey = table.spellingOf("store", "store_id")
        let storeID = table.string(storeKey, required: true)
        if let storeID, !declaredStores.contains(storeID) {
            let known = declaredStores.sorted().joined(separator: ", ")
            table.report(storeKey, "no store named \"\(storeID)\" (stores defined: \(known.isEmpty ? "none" : known))")
        }
        let algorithmName = table.string("algorithm") ?? "token_bucket"
        let rate = table.double("rate_per_second", positive: true, maximum: LimiterRanges.maxCount)
        let burst = table.integer("burst", minimum: 1, maximum: Int(LimiterRanges.maxCount))
        let limit = table.integer("limit", minimum: 1, maximum: Int(LimiterRanges.maxCount))
        let window = table.double("window_seconds", positive: true, maximum: LimiterRanges.maxSeconds)
        let maxConcurrent = table.integer("max_concurrent", minimum: 1, maximum: Int(LimiterRanges.maxCount))
        let timeout = table.double("timeout", positive: true, maximum: 3600)
        let failClosed = table.bool("fail_closed") ?? false
        table.rejectUnknownKeys()

        let algorithm: LimiterConfig.Algorithm
        switch algorithmName {
        case "token_bucket":
            if !table.has("rate_per_second") && !table.has("max_concurrent") {
                table.report("rate_per_second", "a token_bucket limiter needs rate_per_second or max_concurrent")
                return nil
            }
            for key in ["limit", "window_seconds"] where table.has(key) {
                table.report(key, "not a token_bucket setting (it belongs to sliding_window)")
            }
            if burst != nil && !table.has("rate_per_second") {
                table.report("burst", "burst needs rate_per_second")
            }
            algorithm = .tokenBucket(rate.map { TokenBucketRule(ratePerSecond: $0, burst: burst) })
        case "sliding_window":
            for key in ["limit", "window_seconds"] where !table.has(key) {
                table.report(key, "missing required key (a sliding_window limiter needs limit and window_seconds)")
            }
            for key in ["rate_per_second", "burst"] where table.has(key) {
                table.report(key, "not a sliding_window setting (it belongs to token_bucket)")
            }
            guard let limit, let window else { return nil }
            algorithm = .slidingWindow(SlidingWindowRule(limit: limit, windowSeconds: window))
        default:
            table.report("algorithm", "expected \"token_bucket\" or \"sliding_window\", found \"\(algorithmName)\"")
            return nil
        }
        guard let storeID else { return nil }
        return LimiterConfig(
            id: id,
            storeID: storeID,
            algorithm: algorithm,
            maxConcurrent: maxConcurrent,
            timeout: timeout,
            failClosed: failClosed
        )
    }
}

/// The ranges limiter numbers are accepted in: wide for any real limit, and narrow enough that
/// the arithmetic on them (intervals, capacities, timestamps in microseconds) never overflows.
public enum LimiterRanges {
    /// Requests per second, per window, in a burst or in flight: a billion.
    public static let maxCount: Double = 1_000_000_000
    /// A window: one year.
    public static let maxSeconds: Double = 31_536_000
}
