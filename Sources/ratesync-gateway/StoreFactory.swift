import Gateway
import Logging
import NIOCore
import RateSync
import RateSyncRedis

/// Builds the store behind every `[stores.<id>]` that a route's limiter uses, and checks at start
/// that each one answers (the seed's "Verify Redis on startup").
enum StoreFactory {
    struct StartupFailure: Error, CustomStringConvertible {
        let description: String
    }

    static func makeStores(
        for config: LoadedConfig,
        group: any EventLoopGroup,
        logger: Logger
    ) throws -> [String: any RateLimitStore] {
        var stores: [String: any RateLimitStore] = [:]
        for store in config.storesInUse {
            switch store.engine {
            case .memory:
                stores[store.id] = MemoryStore(id: store.id)
            case .redis(let settings):
                let gatewaySide = config.gateway.storeSettings(for: store.id)
                // socket_timeout is the ceiling for any one command.
                let timeoutMs = min(Double(gatewaySide.commandTimeoutMs), settings.socketTimeout * 1000)
                do {
                    stores[store.id] = try RedisStore(
                        id: store.id,
                        settings: settings,
                        commandTimeout: .milliseconds(Int64(timeoutMs)),
                        group: group,
                        logger: logger
                    )
                } catch {
                    throw StartupFailure(
                        description: "store \"\(store.id)\" (\(settings.url.redacted)): cannot set up TLS: \(error)"
                    )
                }
            }
        }
        return stores
    }

    /// Connects every Redis store and loads its scripts; throws one line naming the store, its
    /// address (password masked) and the cause.
    static func verify(_ stores: [String: any RateLimitStore]) throws {
        for store in stores.values.sorted(by: { $0.id < $1.id }) {
            guard let redis = store as? RedisStore else { continue }
            do {
                try redis.connect().wait()
            } catch {
                throw StartupFailure(
                    description: "store \"\(redis.id)\" (\(redis.settings.url.redacted)): \(error)"
                )
            }
        }
    }
}
