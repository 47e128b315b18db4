import Foundation
import Gateway
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RateSync

/// SIGHUP: reads both files again (and the TLS certificate and key). A valid set becomes the
/// configuration of every request that begins from then on (connections stay open; renewed
/// certificates serve new connections); an invalid one is logged, counted, and changes nothing.
/// Stores whose settings did not change are kept (with their connections and breaker); a new or
/// changed store must answer before the new configuration is taken.
final class Reloader: Sendable {
    private struct StoreEntry: Sendable {
        let config: StoreConfig
        let settings: GatewayConfig.StoreSettings
        let store: any RateLimitStore
    }

    private let configPath: String
    private let server: GatewayServer
    private let group: any EventLoopGroup
    private let logger: Logger
    private let stores: NIOLockedValueBox<[String: StoreEntry]>

    init(
        configPath: String,
        loaded: LoadedConfig,
        stores: [String: any RateLimitStore],
        server: GatewayServer,
        group: any EventLoopGroup,
        logger: Logger
    ) {
        self.configPath = configPath
        self.server = server
        self.group = group
        self.logger = logger
        var entries: [String: StoreEntry] = [:]
        for config in loaded.storesInUse {
            guard let store = stores[config.id] else { continue }
            entries[config.id] = StoreEntry(config: config, settings: loaded.gateway.storeSettings(for: config.id), store: store)
        }
        self.stores = NIOLockedValueBox(entries)
    }

    /// The stores in use now (for shutdown).
    var currentStores: [String: any RateLimitStore] {
        stores.withLockedValue { $0.mapValues(\.store) }
    }

    func reload() {
        let metrics = server.runtime.metrics
        // Stores this attempt made: if it fails, they are stopped, not left connected.
        var made: [String: any RateLimitStore] = [:]
        do {
            let loaded = try LoadedConfig.load(gatewayPath: configPath)
            // First, so that a certificate that does not load fails the reload before any new
            // store is made.
            try server.reloadTLS(loaded.gateway.server.tls)
            let previous = stores.withLockedValue { $0 }
            var next: [String: StoreEntry] = [:]
            for config in loaded.storesInUse {
                let settings = loaded.gateway.storeSettings(for: config.id)
                if let existing = previous[config.id], existing.config == config, existing.settings == settings {
                    next[config.id] = existing
                    continue
                }
                let store = try StoreFactory.makeStore(config, gatewaySide: settings, group: group, logger: logger)
                made[config.id] = store
                if let failure = StoreFactory.verify([config.id: store]).first {
                    throw StoreFactory.StartupFailure(description: failure.message)
                }
                next[config.id] = StoreEntry(config: config, settings: settings, store: store)
            }
            let runtime = try GatewayRuntime(config: loaded, stores: next.mapValues(\.store), metrics: metrics)
            let old = server.runtime.config.gateway
            server.replaceRuntime(runtime)
            stores.withLockedValue { $0 = next }
            retire(previous.filter { id, entry in next[id]?.store !== entry.store }.mapValues(\.store))
            metrics.reloadSuccesses.increment()
            logger.notice(
                "configuration reloaded",
                metadata: ["routes": "\(loaded.gateway.routes.count)", "limiters": "\(loaded.rateSync.limiters.count)"]
            )
            if old.server.listen != loaded.gateway.server.listen || old.admin != loaded.gateway.admin
                || old.server.workers != loaded.gateway.server.workers || old.accessLog != loaded.gateway.accessLog
            {
                logger.warning("listen addresses, workers and the access log change only on restart")
            }
        } catch {
            StoreFactory.stop(made)
            metrics.reloadFailures.increment()
            let problems = (error as? ConfigError)?.problems.map(\.description) ?? ["\(error)"]
            logger.error(
                "configuration reload failed; the running configuration stays",
                metadata: ["problems": "\(problems.joined(separator: "; "))"]
            )
        }
    }

    /// Stores no longer used: requests that began before the reload may still be using them.
    private func retire(_ stores: [String: any RateLimitStore]) {
        guard !stores.isEmpty else { return }
        group.next().scheduleTask(in: .seconds(60)) { StoreFactory.stop(stores) }
    }
}
