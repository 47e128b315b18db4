import Foundation
import TestSupport

/// A real gateway process in front of a real demo upstream, each on a free port, with config
/// files written to a fresh directory.
final class GatewayHarness {
    let directory: URL
    let upstream: ChildProcess
    let upstreamPort: Int
    let gateway: ChildProcess
    let proxyPort: Int
    let adminPort: Int

    var base: String { "http://127.0.0.1:\(proxyPort)" }
    var admin: String { "http://127.0.0.1:\(adminPort)" }

    /// - Parameters:
    ///   - rateSync: the whole rate-sync.toml.
    ///   - routes: `[[routes]]` tables (the upstream is called "app").
    ///   - server: extra lines for `[server]`.
    ///   - upstream: extra lines for `[upstreams.app]`.
    ///   - upstreamURL: overrides the demo upstream's URL (to point at nothing, say).
    ///   - upstreamTargets: a `targets = ...` array in place of the URL.
    init(
        rateSync: String,
        routes: String,
        server: String = "",
        upstream upstreamExtras: String = "",
        upstreamURL: String? = nil,
        upstreamTargets: String? = nil,
        gatewayExtras: String = "",
        environment: [String: String] = [:],
        gatewayArguments: [String] = []
    ) throws {
        self.environment = environment
        self.gatewayArguments = gatewayArguments
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ratesync-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        (upstream, upstreamPort) = try startListening(Binaries.demoUpstream, ["--port", "0"])

        let gatewayToml = """
            [server]
            listen = "127.0.0.1:0"
            \(server.contains("workers") ? "" : "workers = 2")
            \(server)
            [admin]
            listen = "127.0.0.1:0"
            [rate_sync]
            config = "rate-sync.toml"
            [upstreams.app]
            \(upstreamTargets.map { "targets = \($0)" } ?? "url = \"\(upstreamURL ?? "http://127.0.0.1:\(upstreamPort)")\"")
            \(upstreamExtras)
            \(gatewayExtras)
            \(routes)
            """
        try gatewayToml.write(to: directory.appendingPathComponent("gateway.toml"), atomically: true, encoding: .utf8)
        try rateSync.write(to: directory.appendingPathComponent("rate-sync.toml"), atomically: true, encoding: .utf8)
        (gateway, proxyPort, adminPort) = try Self.launchGateway(
            directory: directory,
            environment: environment,
            arguments: gatewayArguments
        )
    }

    private let environment: [String: String]
    private let gatewayArguments: [String]
    private var others: [ChildProcess] = []

    var configPath: String { directory.appendingPathComponent("gateway.toml").path }
    var rateSyncPath: String { directory.appendingPathComponent("rate-sync.toml").path }

    /// The value of one Prometheus series on /metrics, e.g.
    /// `metric("ratesync_decisions_total", ["route": "auth", "limiter": "auth", "outcome": "limited"])`.
    func metric(_ name: String, _ labels: [String: String] = [:]) throws -> Double? {
        let text = try curl(["\(admin)/metrics"]).text
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { continue }
            let series = parts[0]
            let seriesName = series.prefix { $0 != "{" }
            guard seriesName == name else { continue }
            if labels.allSatisfy({ series.contains("\($0.key)=\"\($0.value)\"") }) { return Double(parts[1]) }
        }
        return nil
    }

    /// Sends SIGHUP and waits until the gateway has counted `successes` successful reloads.
    func reload(untilSuccesses successes: Double = 1) throws {
        kill(gateway.pid, SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        while try metric("ratesync_config_reloads_total", ["result": "success"]) != successes && Date() < deadline {
            usleep(50_000)
        }
    }

    /// Another gateway process on the same config (and so the same store): returns its proxy port.
    func startAnotherGateway() throws -> Int {
        let (process, proxy, _) = try Self.launchGateway(directory: directory, environment: environment, arguments: gatewayArguments)
        others.append(process)
        return proxy
    }

    private static func launchGateway(
        directory: URL,
        environment: [String: String],
        arguments: [String]
    ) throws -> (ChildProcess, proxy: Int, admin: Int) {
        let process = try ChildProcess(
            Binaries.gateway,
            ["--config", directory.appendingPathComponent("gateway.toml").path] + arguments,
            environment: ["LOG_LEVEL": "warning"].merging(environment) { $1 }
        )
        let line = try process.waitForLine(containing: "ratesync-gateway listening")
        return (process, try port(after: "proxy=", in: line), try port(after: "admin=", in: line))
    }

    func stop() {
        others.forEach { $0.stop() }
        gateway.stop()
        upstream.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }

    /// The production deployment's two limiters on a memory store (see DeploymentFixtures).
    static let deploymentLimiters = DeploymentFixtures.memoryLimiters

    /// A memory store "m" with one sliding-window limiter.
    static func memoryWindow(_ name: String, limit: Int, windowSeconds: Int = 60) -> String {
        """
        [stores.m]
        engine = "memory"
        [limiters.\(name)]
        store = "m"
        algorithm = "sliding_window"
        limit = \(limit)
        window_seconds = \(windowSeconds)
        """
    }

    /// One route for every path, to the demo upstream.
    static func catchAllRoute(limiters: [String], identifier: String = "client_ip") -> String {
        """
        [[routes]]
        name = "all"
        upstream = "app"
        limiters = [\(limiters.map { "\"\($0)\"" }.joined(separator: ", "))]
        identifier = "\(identifier)"
        """
    }

    /// The deployment's two routes (see DeploymentFixtures).
    static let deploymentRoutes = DeploymentFixtures.routes
}

/// A raw client of Tests/interop (Python, standard library only).
func interopScript(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("interop/\(name)").path
}

/// The number an interop script printed as `key=NUMBER` (its last such figure), if any.
func reportedNumber(_ key: String, in output: String) -> Double? {
    Double(output.components(separatedBy: "\(key)=").last?.prefix { $0 != " " && $0 != "\n" } ?? "")
}

/// Starts a server that prints `listening on HOST:PORT` once it accepts connections; returns it
/// with that port.
func startListening(_ executable: URL, _ arguments: [String]) throws -> (process: ChildProcess, port: Int) {
    let server = try ChildProcess(executable, arguments)
    return (server, try port(after: "listening on ", in: server.waitForLine(containing: "listening on")))
}

/// Starts Tests/interop's `script` as a server (see `startListening`), under `python` (a path)
/// or else the `python3` on PATH.
func startInteropServer(_ script: String, _ arguments: [String] = [], python: String? = nil) throws -> (process: ChildProcess, port: Int) {
    guard let python else {
        return try startListening(URL(fileURLWithPath: "/usr/bin/env"), ["python3", interopScript(script)] + arguments)
    }
    return try startListening(URL(fileURLWithPath: python), [interopScript(script)] + arguments)
}
