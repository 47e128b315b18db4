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
