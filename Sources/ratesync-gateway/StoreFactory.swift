import Gateway
import Logging
import NIOCore
import RateSync
import RateSyncPostgres
import RateSyncRedis

/// Builds the store behind every `[stores.<id>]` that a route's limiter uses, and checks at start
/// that each one answers (the production deployment guide's "Verify Redis on startup").
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
            stores[store.id] = try makeStore(
                store,
                gatewaySide: config.gateway.storeSettings(for: store.id),
                group: group,
                logger: logger
            )
        }
        return stores
    }

    static func makeStore(
        _ store: StoreConfig,
        gatewaySide: GatewayConfig.StoreSettings,
        group: any EventLoopGroup,
        logger: Logger
    ) throws -> any RateLimitStore {
        let connected: any ConnectedStore
        switch store.engine {
        case .memory:
            return MemoryStore(id: store.id)
        case .redis(let settings):
            // socket_timeout is the ceiling for any one command.
            let timeoutMs = min(Double(gatewaySide.commandTimeoutMs), settings.socketTimeout * 1000)
            do {
                if let seeds = settings.clusterSeeds {
                    // Each node has its own breaker inside: one node's failures never open the
                    // store's (they do not count as the store's health).
                    connected = try RedisClusterStore(
                        id: store.id,
                        settings: settings,
                        seeds: seeds,
                        commandTimeout: .milliseconds(Int64(timeoutMs)),
                        breakerThreshold: gatewaySide.breaker.threshold,
                        breakerTimeout: gatewaySide.breaker.timeoutSeconds,
                        group: group,
                        logger: logger
                    )
                } else {
                    connected = try RedisStore(
                        id: store.id,
                        settings: settings,
                        commandTimeout: .milliseconds(Int64(timeoutMs)),
                        group: group,
                        logger: logger
                    )
                }
            } catch {
                throw StartupFailure(
                    description: "store \"\(store.id)\" (\(settings.url.redacted)): cannot set up TLS: \(error)"
                )
            }
        case .postgres(let settings):
            do {
                connected = try PostgresStore(
                    id: store.id,
                    settings: settings,
                    commandTimeout: .milliseconds(Int64(gatewaySide.commandTimeoutMs)),
                    group: group,
                    logger: logger
                )
            } catch {
                throw StartupFailure(description: "store \"\(store.id)\" (\(settings.url.redacted)): cannot set up TLS: \(error)")
            }
        }
        return BreakerGuardedStore(
            wrapping: connected,
            threshold: gatewaySide.breaker.threshold,
            timeout: gatewaySide.breaker.timeoutSeconds,
            localFallback: gatewaySide.localDivisor.map { LocalFallback(storeID: store.id, divisor: $0) }
        ) { storeID, transition in
            let metadata: Logger.Metadata = [
                "store": "\(storeID)", "from": "\(transition.from)", "to": "\(transition.to)",
                "reason": "\(transition.reason)",
            ]
            // Opening is what an operator must see; closing again is good news.
            if transition.to == "open" {
                logger.warning("circuit breaker opened", metadata: metadata)
            } else if transition.to == "closed" {
                logger.notice("circuit breaker closed", metadata: metadata)
            } else {
                logger.info("circuit breaker half-open", metadata: metadata)
            }
        }
    }

    /// Connects every networked store (Redis: and loads its scripts). Returns one line per store
    /// that failed, naming the store, its address (password masked) and the cause.
    static func verify(_ stores: [String: any RateLimitStore]) -> [(store: BreakerGuardedStore, message: String)] {
        var failures: [(BreakerGuardedStore, String)] = []
        for store in stores.values.sorted(by: { $0.id < $1.id }) {
            guard let guarded = store as? BreakerGuardedStore, let connected = guarded.inner as? any ConnectedStore else { continue }
            do {
                try connected.connect().wait()
            } catch {
                failures.append((guarded, "store \"\(connected.id)\" (\(connected.addressDescription)): \(error)"))
            }
        }
        return failures
    }

    static func stop(_ stores: [String: any RateLimitStore]) {
        for case let guarded as BreakerGuardedStore in stores.values {
            (guarded.inner as? any ConnectedStore)?.stop()
        }
    }
}
