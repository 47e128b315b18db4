import Gateway
import RateSync

/// Builds the store behind every `[stores.<id>]` that a route's limiter uses.
enum StoreFactory {
    struct UnsupportedEngine: Error, CustomStringConvertible {
        let storeID: String
        let engine: String
        var description: String {
            "store \"\(storeID)\": the \(engine) engine is not available in this build (use engine = \"memory\")"
        }
    }

    static func makeStores(for config: LoadedConfig) throws -> [String: any RateLimitStore] {
        var stores: [String: any RateLimitStore] = [:]
        for store in config.storesInUse {
            switch store.engine {
            case .memory:
                stores[store.id] = MemoryStore(id: store.id)
            case .redis:
                throw UnsupportedEngine(storeID: store.id, engine: "redis")
            }
        }
        return stores
    }
}
