import Foundation

/// A `[stores.<id>]` table of rate-sync.toml.
public struct StoreConfig: Sendable, Equatable {
    public enum Engine: Sendable, Equatable {
        case memory
        case redis(RedisStoreSettings)

        public var name: String {
            switch self {
            case .memory: return "memory"
            case .redis: return "redis"
            }
        }
    }

    public var id: String
    public var engine: Engine

    public init(id: String, engine: Engine) {
        self.id = id
        self.engine = engine
    }
}

/// Connection settings of a Redis store, in rate-sync's names.
public struct RedisStoreSettings: Sendable, Equatable {
    public var url: RedisURL
    public var keyPrefix: String
    public var poolMinSize: Int
    public var poolMaxSize: Int
    /// Seconds; the ceiling for any single command.
    public var socketTimeout: Double
    /// Seconds allowed to establish a connection.
    public var socketConnectTimeout: Double
    public var timingMarginMs: Double?
    /// A CA bundle for `rediss://`, beyond the system trust store.
    public var caFile: String?
    /// `mode = "sentinel"`: the primary is whichever address the sentinels name; `url` then only
    /// carries credentials, the database and the scheme.
    public var sentinel: SentinelSettings?
    /// `mode = "cluster"`: the nodes to learn the slot map from (any reachable one suffices).
    public var clusterSeeds: [RedisAddress]?

    public init(
        url: RedisURL,
        keyPrefix: String = "rate_limit",
        poolMinSize: Int = 1,
        poolMaxSize: Int = 10,
        socketTimeout: Double = 5,
        socketConnectTimeout: Double = 5,
        timingMarginMs: Double? = nil,
        caFile: String? = nil
    ) {
        self.url = url
        self.keyPrefix = keyPrefix
        self.poolMinSize = poolMinSize
        self.poolMaxSize = poolMaxSize
        self.socketTimeout = socketTimeout
        self.socketConnectTimeout = socketConnectTimeout
        self.timingMarginMs = timingMarginMs
        self.caFile = caFile
    }
}

/// Where a Sentinel-managed Redis's primary is found.
public struct SentinelSettings: Sendable, Equatable {
    public var sentinels: [RedisAddress]
    public var masterName: String
    /// For sentinels that require AUTH (their own password, not the data nodes').
    public var password: String?

    public init(sentinels: [RedisAddress], masterName: String, password: String? = nil) {
        self.sentinels = sentinels
        self.masterName = masterName
        self.password = password
    }
}

/// A Redis server's `host:port`.
public struct RedisAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, `[v6]:port`; nil when the text is neither or the port is 0.
    public init?(_ text: String) {
        guard let (host, port) = HostPort.split(text.trimmingCharacters(in: .whitespaces)), port > 0 else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
