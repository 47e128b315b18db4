import Foundation

/// A `[stores.<id>]` table of rate-sync.toml.
public struct StoreConfig: Sendable, Equatable {
    public enum Engine: Sendable, Equatable {
        case memory
        case redis(RedisStoreSettings)
        case postgres(PostgresStoreSettings)

        public var name: String {
            switch self {
            case .memory: return "memory"
            case .redis: return "redis"
            case .postgres: return "postgres"
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

/// A Postgres store, in rate-sync's names: its tables are rate-sync's own
/// (`<schema>.<table>` for token buckets and concurrency, `<schema>.<table>_window` for windows).
public struct PostgresStoreSettings: Sendable, Equatable {
    public var url: PostgresURL
    public var tableName: String
    public var schemaName: String
    /// Creates the tables (and their indexes) when missing, as rate-sync's `auto_create` does.
    public var autoCreate: Bool
    public var poolMinSize: Int
    public var poolMaxSize: Int
    /// Milliseconds a token bucket's interval is shortened by (rate-sync's clock-skew allowance).
    public var timingMarginMs: Double

    public init(
        url: PostgresURL,
        tableName: String = "rate_limiter_state",
        schemaName: String = "public",
        autoCreate: Bool = false,
        poolMinSize: Int = 2,
        poolMaxSize: Int = 10,
        timingMarginMs: Double = 10
    ) {
        self.url = url
        self.tableName = tableName
        self.schemaName = schemaName
        self.autoCreate = autoCreate
        self.poolMinSize = poolMinSize
        self.poolMaxSize = poolMaxSize
        self.timingMarginMs = timingMarginMs
    }

    /// Table and schema names go into SQL unquoted, as rate-sync writes them (so both fold them
    /// to lower case alike): only plain identifiers are accepted.
    public static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 63 else { return false }
        let letters = ("a"..."z").contains(first) || ("A"..."Z").contains(first) || first == "_"
        return letters && name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
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
