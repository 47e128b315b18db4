import ArgumentParser
import EventLoopSupport
import Foundation
import Gateway
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import RateSync
import RateSyncRedis

/// The version printed by `--version`.
let gatewayVersion = "0.1.0"

struct RatesyncGateway: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ratesync-gateway",
        abstract: "A reverse proxy that enforces rate-sync limits inline.",
        version: gatewayVersion,
        subcommands: [Run.self, Check.self],
        defaultSubcommand: Run.self
    )
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Path to gateway.toml (rate-sync.toml is found through its [rate_sync] table).")
    var config: String = "gateway.toml"
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate gateway.toml and rate-sync.toml; list every problem and exit 1 if there are any."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        do {
            let loaded = try LoadedConfig.load(gatewayPath: options.config)
            if let tls = loaded.gateway.server.tls { _ = try TLSContexts.server(tls) }
            for upstream in loaded.gateway.upstreams.values { _ = try TLSContexts.upstream(upstream) }
            print(
                "ok: \(options.config) and \(loaded.gateway.rateSyncPath): "
                    + "\(loaded.gateway.routes.count) routes, \(loaded.rateSync.limiters.count) limiters, "
                    + "\(loaded.rateSync.stores.count) stores"
            )
        } catch {
            printProblems(error)
            throw ExitCode(1)
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway in the foreground (the default).")

    @OptionGroup var options: ConfigOption

    @Flag(
        name: .long,
        help: "Start even when a store cannot be reached: its breaker starts open, fail policies answer, and it reconnects in the background."
    )
    var allowDegradedStart = false

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    func run() throws {
        var logger = Logger(label: "ratesync-gateway")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info

        let loaded: LoadedConfig
        do {
            loaded = try LoadedConfig.load(gatewayPath: options.config)
        } catch {
            printProblems(error)
            throw ExitCode(1)
        }

        let metricsRegistry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metricsRegistry))
        let accessLog: AccessLog?
        do {
            accessLog = loaded.gateway.accessLog.enabled ? try AccessLog(path: loaded.gateway.accessLog.path) : nil
        } catch {
            FileHandle.standardError.write(Data("ratesync-gateway: \(error)\n".utf8))
            throw ExitCode(1)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: loaded.gateway.server.workers)
        ProcessLifetime.keepLoopsForever(of: group)
        let stores: [String: any RateLimitStore]
        let server: GatewayServer
        do {
            stores = try StoreFactory.makeStores(for: loaded, group: group, logger: logger)
            let unreachable = StoreFactory.verify(stores)
            if !unreachable.isEmpty && !allowDegradedStart {
                throw StoreFactory.StartupFailure(description: unreachable.map(\.message).joined(separator: "; "))
            }
            for (store, message) in unreachable {
                logger.error("starting degraded: store unreachable", metadata: ["cause": "\(message)"])
                store.forceOpen(reason: "unreachable at start")
            }
            let runtime = try GatewayRuntime(config: loaded, stores: stores)
            server = try GatewayServer.start(
                runtime: runtime,
                adminAddress: loaded.gateway.admin,
                group: group,
                logger: logger,
                metricsRegistry: metricsRegistry,
                accessLog: accessLog
            )
        } catch {
            FileHandle.standardError.write(Data("ratesync-gateway: cannot start: \(error)\n".utf8))
            try? group.syncShutdownGracefully()
            throw ExitCode(1)
        }
        logger.info(
            "listening",
            metadata: [
                "proxy": "\(server.proxyAddress)", "admin": "\(server.adminAddress)",
                "routes": "\(loaded.gateway.routes.count)", "workers": "\(loaded.gateway.server.workers)",
            ]
        )
        // Tests and scripts that ask for port 0 learn the real ports from this line.
        FileHandle.standardOutput.write(
            Data("ratesync-gateway listening proxy=\(server.proxyAddress) admin=\(server.adminAddress)\n".utf8)
        )

        let reloader = Reloader(
            configPath: options.config,
            loaded: loaded,
            stores: stores,
            server: server,
            group: group,
            logger: logger
        )
        let stopped = SignalLoop.run { reloader.reload() }
        let drainTimeout = server.runtime.config.gateway.server.drainTimeoutSeconds
        logger.notice("draining", metadata: ["signal": "\(stopped)", "timeout_s": "\(drainTimeout)"])
        let left = (try? server.drain(timeout: TimeAmount(seconds: drainTimeout)).wait()) ?? 0
        if left > 0 {
            logger.warning("drain timeout passed; closing the remaining connections", metadata: ["connections": "\(left)"])
        }
        try? server.stop().wait()
        StoreFactory.stop(reloader.currentStores)
        accessLog?.close()
        try? group.syncShutdownGracefully()
        logger.notice("stopped")
    }
}

func printProblems(_ error: any Error) {
    let text: String
    if let configError = error as? ConfigError {
        text = configError.problems.map { "error: \($0)" }.joined(separator: "\n")
    } else {
        text = "error: \(error)"
    }
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

RatesyncGateway.main()
