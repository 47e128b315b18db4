import Foundation
import RateSync
import NIOCore

/// Turns gateway.toml's text into a `GatewayConfig`, reporting every problem to the sink.
enum GatewayConfigParser {
    /// The config when the file is valid, and in any case where rate-sync.toml is, so that its
    /// problems can be reported alongside this file's.
    struct Outcome {
        var config: GatewayConfig?
        var rateSyncPath: String
    }

    static func parse(
        _ text: String,
        file: String,
        environment: [String: String],
        sink: ConfigProblemSink
    ) -> Outcome {
        guard let root = TOMLFileLoader.parse(text, file: file, environment: environment, sink: sink) else {
            return Outcome(config: nil, rateSyncPath: readRateSyncPath(nil, gatewayFile: file, environment: environment))
        }
        let reader = TableReader(root, path: "", sink: sink)
        let server = readServer(reader.table("server") ?? TableReader([:], path: "server", sink: sink))
        let admin = readListen(reader.table("admin"), defaultAddress: ListenAddress(host: "127.0.0.1", port: 9901))
        let rateSyncPath = readRateSyncPath(reader.table("rate_sync"), gatewayFile: file, environment: environment)
        var upstreams: [String: GatewayConfig.Upstream] = [:]
        let upstreamTables = reader.namedTables("upstreams")
        for (name, table) in upstreamTables {
            if let upstream = readUpstream(name: name, table) { upstreams[name] = upstream }
        }
        // An upstream with problems of its own still exists for its routes: one mistake, one report.
        let declaredUpstreams = Set(upstreamTables.map(\.name))
        var routes: [GatewayConfig.Route] = []
        let routeTables = reader.arrayOfTables("routes")
        if routeTables.isEmpty && !reader.has("routes") {
            sink.report("routes", "no routes defined (add at least one [[routes]] table)")
        }
        var names = Set<String>()
        for table in routeTables {
            guard let route = readRoute(table, upstreams: declaredUpstreams) else { continue }
            if !names.insert(route.name).inserted {
                table.report("name", "another route is already named \"\(route.name)\"")
            }
            routes.append(route)
        }
        let accessLog = readAccessLog(reader.table("access_log"), gatewayFile: file)
        let breaker = reader.table("circuit_breaker").map { readBreaker($0, defaults: .default) } ?? .default
        var stores: [String: GatewayConfig.StoreSettings] = [:]
        for (id, table) in reader.namedTables("stores") {
            stores[id] = readStoreSettings(table, breakerDefaults: breaker)
        }
        var limiterOptions: [String: GatewayConfig.LimiterOptions] = [:]
        for (id, table) in reader.namedTables("limiters") {
            let burst = table.integer("burst", minimum: 1, maximum: Int(LimiterRanges.maxCount))
            let lease = table.double("lease_seconds", positive: true, maximum: 86400)
            if let lease, lease < 1 { table.report("lease_seconds", "expected at least 1 second, found \(lease)") }
            table.rejectUnknownKeys()
            limiterOptions[id] = GatewayConfig.LimiterOptions(burst: burst, leaseSeconds: lease)
        }
        let jwt = reader.table("jwt").flatMap(readJWT)
        reader.rejectUnknownKeys()
        guard let server, let admin else { return Outcome(config: nil, rateSyncPath: rateSyncPath) }
        var config = GatewayConfig(
            file: file,
            server: server,
            admin: admin,
            rateSyncPath: rateSyncPath,
            upstreams: upstreams,
            routes: routes,
            accessLog: accessLog,
            circuitBreaker: breaker,
            stores: stores
        )
        config.limiterOptions = limiterOptions
        config.jwt = jwt
        return Outcome(config: config, rateSyncPath: rateSyncPath)
    }

    private static func readServer(_ table: TableReader) -> GatewayConfig.Server? {
        let listen = readListenField(table, defaultAddress: ListenAddress(host: "127.0.0.1", port: 8080))
        let workers = table.integer("workers", minimum: 1, maximum: 1024) ?? System.coreCount
        let idle = table.double("idle_timeout_seconds", positive: true, maximum: 86400) ?? 60
        let send = table.double("send_timeout_seconds", positive: true, maximum: 86400) ?? 60
        let maxHeader = table.integer("max_header_bytes", minimum: 1024, maximum: 1 << 24) ?? 32 * 1024
        let drain = table.double("drain_timeout_seconds", positive: true, maximum: 3600) ?? 30
        let h2c = table.bool("h2c") ?? false
        let maxStreams = table.integer("max_concurrent_streams", minimum: 1, maximum: 100_000) ?? 100
        let maxWaiting = table.integer("max_waiting", minimum: 0, maximum: 1_000_000) ?? 1024
        let websocketIdle = table.double("websocket_idle_timeout_seconds", positive: true, maximum: 86400) ?? 300
        let tls = table.table("tls").flatMap { readTLS($0, gatewayFile: table.sink.file) }
        // Nobody is trusted to speak for clients until told (nginx's realip does the same): a
        // default that trusted private ranges let any client on them pick its own identity.
        var trusted: [IPNetwork] = []
        let trustedGiven = table.has("trusted_proxies")
        if let networks = table.stringArray("trusted_proxies") {
            trusted = []
            for (index, text) in networks.enumerated() {
                if let network = IPNetwork(text) {
                    trusted.append(network)
                } else {
                    table.sink.report(
                        "\(table.fieldPath("trusted_proxies"))[\(index)]",
                        "expected an address or network such as 10.0.0.0/8 or fc00::/7, found \"\(text)\""
                    )
                }
            }
        }
        table.rejectUnknownKeys()
        guard let listen else { return nil }
        var server = GatewayConfig.Server(
            listen: listen,
            workers: workers,
            idleTimeoutSeconds: idle,
            sendTimeoutSeconds: send,
            maxHeaderBytes: maxHeader,
            trustedProxies: trusted,
            drainTimeoutSeconds: drain,
            tls: tls,
            h2c: h2c,
            maxConcurrentStreams: maxStreams
        )
        server.trustedProxiesGiven = trustedGiven
        server.maxWaiting = maxWaiting
        server.websocketIdleTimeoutSeconds = websocketIdle
        return server
    }

    private static func readTLS(_ table: TableReader, gatewayFile: String) -> GatewayConfig.TLSSettings? {
        let cert = table.string("cert", required: true).map { resolve($0, against: gatewayFile) }
        let key = table.string("key", required: true).map { resolve($0, against: gatewayFile) }
        let minimum = table.string("min_version") ?? "1.2"
        if minimum != "1.2" && minimum != "1.3" {
            table.report("min_version", "expected \"1.2\" or \"1.3\", found \"\(minimum)\"")
        }
        table.rejectUnknownKeys()
        for (key, path) in [("cert", cert), ("key", key)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                table.report(key, "cannot read \(path)")
            }
        }
        guard let cert, let key else { return nil }
        return GatewayConfig.TLSSettings(certificatePath: cert, keyPath: key, minimumVersion: minimum)
    }

    /// A path from gateway.toml, relative to the file's directory.
    static func resolve(_ path: String, against file: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        let directory = (file as NSString).deletingLastPathComponent
        return directory.isEmpty ? path : "\(directory)/\(path)"
    }

    private static func readListen(_ table: TableReader?, defaultAddress: ListenAddress) -> ListenAddress? {
        guard let table else { return defaultAddress }
        let address = readListenField(table, defaultAddress: defaultAddress)
        table.rejectUnknownKeys()
        return address
    }

    private static func readListenField(_ table: TableReader, defaultAddress: ListenAddress) -> ListenAddress? {
        guard let text = table.string("listen") else { return defaultAddress }
        guard let address = ListenAddress(text) else {
            table.report("listen", "expected host:port such as 127.0.0.1:8080 or [::1]:8080, found \"\(text)\"")
            return nil
        }
        return address
    }

    private static func readRateSyncPath(
        _ table: TableReader?,
        gatewayFile: String,
        environment: [String: String]
    ) -> String {
        let configured = table?.string("config") ?? "rate-sync.toml"
        table?.rejectUnknownKeys()
        if let override = environment["RATE_SYNC_CONFIG"], !override.isEmpty {
            // An environment override is relative to the working directory, like any path typed
            // in a shell; the file's own setting is relative to the file.
            return override
        }
        return resolve(configured, against: gatewayFile)
    }

    private static func readAccessLog(_ table: TableReader?, gatewayFile: String) -> GatewayConfig.AccessLogSettings {
        guard let table else { return GatewayConfig.AccessLogSettings(enabled: true, path: nil) }
        let enabled = table.bool("enabled") ?? true
        let path = table.string("path")
        table.rejectUnknownKeys()
        let file = path == "-" || path == "" ? nil : path.map { resolve($0, against: gatewayFile) }
        return GatewayConfig.AccessLogSettings(enabled: enabled, path: file)
    }

    private static func readBreaker(
        _ table: TableReader,
        defaults: GatewayConfig.BreakerSettings
    ) -> GatewayConfig.BreakerSettings {
        let threshold = table.integer("threshold", minimum: 1, maximum: 1_000_000) ?? defaults.threshold
        let timeout = table.double("timeout", positive: true, maximum: 86400) ?? defaults.timeoutSeconds
        table.rejectUnknownKeys()
        return GatewayConfig.BreakerSettings(threshold: threshold, timeoutSeconds: timeout)
    }

    private static func readStoreSettings(
        _ table: TableReader,
        breakerDefaults: GatewayConfig.BreakerSettings
    ) -> GatewayConfig.StoreSettings {
        let timeout = table.integer("command_timeout_ms", minimum: 1, maximum: 3_600_000) ?? GatewayConfig.defaultCommandTimeoutMs
        let breaker = table.table("circuit_breaker").map { readBreaker($0, defaults: breakerDefaults) } ?? breakerDefaults
        let onFailure = table.string("on_failure") ?? "policy"
        let divisor = table.integer("local_divisor", minimum: 1, maximum: 10_000)
        let denyCache = table.bool("deny_cache") ?? true
        table.rejectUnknownKeys()
        var settings = GatewayConfig.StoreSettings(commandTimeoutMs: timeout, breaker: breaker)
        settings.denyCache = denyCache
        switch onFailure {
        case "local":
            settings.localDivisor = divisor ?? 1
        case "policy":
            if divisor != nil {
                table.report("local_divisor", "local_divisor needs on_failure = \"local\"")
            }
        default:
            table.report("on_failure", "expected \"policy\" or \"local\", found \"\(onFailure)\"")
        }
        return settings
    }

    private static func readUpstream(name: String, _ table: TableReader) -> GatewayConfig.Upstream? {
        let connect = table.integer("connect_timeout_ms", minimum: 1, maximum: 3_600_000) ?? 2_000
        let response = table.integer("response_timeout_ms", minimum: 1, maximum: 86_400_000) ?? 30_000
        let idle = table.integer("max_idle_connections", minimum: 0, maximum: 1_000_000) ?? 256
        let caFile = table.string("ca_file").map { resolve($0, against: table.sink.file) }
        let insecure = table.bool("insecure_skip_tls_verify") ?? false
        let balanceName = table.string("balance") ?? "round_robin"
        let balance = GatewayConfig.Upstream.Balance(rawValue: balanceName)
        if balance == nil {
            table.report("balance", "expected \"round_robin\", \"least_request\" or \"client_ip_hash\", found \"\(balanceName)\"")
        }
        let retries = table.integer("retries", minimum: 0, maximum: 100) ?? 1
        let maxConnections = table.integer("max_connections", minimum: 1, maximum: 1_000_000) ?? 1024
        let websocketIdle = table.double("websocket_idle_timeout_seconds", positive: true, maximum: 86400)
        var dnsRefresh = table.double("dns_refresh_seconds", maximum: 86400) ?? 30
        if dnsRefresh < 0 {
            table.report("dns_refresh_seconds", "expected 0 (look names up only at start) or more, found \(dnsRefresh)")
            dnsRefresh = 30
        }
        let protocolName = table.string("protocol") ?? "http1"
        let wireProtocol = GatewayConfig.Upstream.WireProtocol(rawValue: protocolName)
        if wireProtocol == nil {
            table.report("protocol", "expected \"http1\" or \"h2\", found \"\(protocolName)\"")
        }
        let healthCheck = table.table("health_check").map(readHealthCheck)
        let outlier = table.table("outlier").map(readOutlier) ?? GatewayConfig.Upstream.Outlier()
        let urls = readTargetURLs(table)
        table.rejectUnknownKeys()
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            table.report("ca_file", "cannot read \(caFile)")
        }
        guard let urls, let first = urls.first else { return nil }
        var targets: [GatewayConfig.UpstreamTarget] = []
        var schemes: Set<String> = []
        var paths: Set<String> = []
        for (key, text, weight) in urls {
            guard let url = URLComponents(string: text), let host = url.host, !host.isEmpty, let scheme = url.scheme,
                scheme == "http" || scheme == "https"
            else {
                table.sink.report(key, "expected an http:// or https:// URL such as http://127.0.0.1:8081, found \"\(text)\"")
                continue
            }
            var path = url.path
            while path.hasSuffix("/") { path.removeLast() }
            schemes.insert(scheme)
            paths.insert(path)
            targets.append(GatewayConfig.UpstreamTarget(host: host, port: url.port ?? (scheme == "https" ? 443 : 80), weight: weight))
        }
        if schemes.count > 1 || paths.count > 1 {
            table.report("targets", "every target must have the same scheme and path (they serve the same requests)")
        }
        guard targets.count == urls.count, let firstTarget = targets.first, let balance else { return nil }
        let useTLS = schemes.first == "https"
        if !useTLS && (caFile != nil || insecure) {
            table.sink.report(first.key, "ca_file and insecure_skip_tls_verify need an https:// URL")
        }
        var upstream = GatewayConfig.Upstream(
            name: name,
            host: firstTarget.host,
            port: firstTarget.port,
            basePath: paths.first ?? "",
            connectTimeoutMs: connect,
            responseTimeoutMs: response,
            maxIdleConnections: idle,
            useTLS: useTLS,
            caFile: caFile,
            insecureSkipTLSVerify: insecure
        )
        upstream.targets = targets
        upstream.balance = balance
        upstream.retries = retries
        upstream.maxConnections = maxConnections
        upstream.websocketIdleTimeoutSeconds = websocketIdle
        upstream.wireProtocol = wireProtocol ?? .http1
        upstream.dnsRefreshSeconds = dnsRefresh
        upstream.healthCheck = healthCheck
        upstream.outlier = outlier.consecutiveFailures > 0 ? outlier : nil
        return upstream
    }

    /// `url = "..."` (one target) or `targets = ["...", { url = "...", weight = 2 }]`: each with
    /// the path of its key for messages.
    private static func readTargetURLs(_ table: TableReader) -> [(key: String, url: String, weight: Int)]? {
        if table.has("url") && table.has("targets") {
            table.accept("url", "targets")
            table.report("targets", "give either url or targets, not both")
            return nil
        }
        guard table.has("targets") else {
            return table.string("url", required: true).map { [(table.fieldPath("url"), $0, 1)] }
        }
        guard case .array(let items)? = table.raw("targets"), !items.isEmpty else {
            table.report("targets", "expected a non-empty array of URLs or { url = \"...\", weight = N } tables")
            return nil
        }
        var urls: [(String, String, Int)] = []
        for (index, item) in items.enumerated() {
            let key = "\(table.fieldPath("targets"))[\(index)]"
            switch item {
            case .string(let text):
                urls.append((key, text, 1))
            case .table(let fields):
                let entry = TableReader(fields, path: key, sink: table.sink)
                let url = entry.string("url", required: true)
                let weight = entry.integer("weight", minimum: 1, maximum: 1000) ?? 1
                entry.rejectUnknownKeys()
                guard let url else { return nil }
                urls.append((key, url, weight))
            default:
                table.sink.report(key, "expected a URL or { url = \"...\", weight = N }, found \(item.description)")
                return nil
            }
        }
        return urls
    }

    private static func readHealthCheck(_ table: TableReader) -> GatewayConfig.Upstream.HealthCheck {
        var check = GatewayConfig.Upstream.HealthCheck()
        check.path = table.string("path") ?? check.path
        if !check.path.hasPrefix("/") { table.report("path", "expected a path starting with /, found \"\(check.path)\"") }
        if check.path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
            table.report("path", "expected a path without spaces or control characters")
        }
        check.intervalMs = table.integer("interval_ms", minimum: 10, maximum: 3_600_000) ?? check.intervalMs
        check.timeoutMs = table.integer("timeout_ms", minimum: 1, maximum: 3_600_000) ?? check.timeoutMs
        check.unhealthyThreshold = table.integer("unhealthy_threshold", minimum: 1, maximum: 1000) ?? check.unhealthyThreshold
        check.healthyThreshold = table.integer("healthy_threshold", minimum: 1, maximum: 1000) ?? check.healthyThreshold
        table.rejectUnknownKeys()
        return check
    }

    private static func readOutlier(_ table: TableReader) -> GatewayConfig.Upstream.Outlier {
        var outlier = GatewayConfig.Upstream.Outlier()
        outlier.consecutiveFailures = table.integer("consecutive_failures", minimum: 0, maximum: 1_000_000) ?? outlier.consecutiveFailures
        outlier.ejectSeconds = table.double("eject_seconds", positive: true, maximum: 300) ?? outlier.ejectSeconds
        table.rejectUnknownKeys()
        return outlier
    }

    private static func readRoute(
        _ table: TableReader,
        upstreams: Set<String>
    ) -> GatewayConfig.Route? {
        let name = table.string("name", required: true)
        let prefix = table.string("path_prefix") ?? "/"
        if !prefix.hasPrefix("/") {
            table.report("path_prefix", "expected a path starting with /, found \"\(prefix)\"")
        } else if prefix.contains(";") {
            // Paths are matched without their segments' parameters: such a prefix matches nothing.
            table.report("path_prefix", "a path prefix cannot hold ';' (paths are matched without their segments' parameters), found \"\(prefix)\"")
        }
        let methods = table.stringArray("methods").map { Set($0.map { $0.uppercased() }) }
        if let methods, methods.isEmpty {
            table.report("methods", "expected at least one method, or no methods key to match all")
        }
        var host = table.string("host").map { $0.lowercased() }
        if let text = host {
            // Matched against a request's host without its port or trailing dot: a host that
            // keeps either, or that no request may name (400), would match nothing.
            let hasPort = text.hasPrefix("[") ? !text.hasSuffix("]") : text.contains(":")
            if RequestAuthority.isValid(Substring(text)), !hasPort {
                host = Router.hostWithoutPort(text)
            } else {
                table.report("host", "expected a host name or address without a port, such as api.example.com, found \"\(text)\"")
            }
        }
        let upstream = table.string("upstream", required: true)
        if let upstream, !upstreams.contains(upstream) {
            let known = upstreams.sorted().joined(separator: ", ")
            table.report("upstream", "no upstream named \"\(upstream)\" (upstreams defined: \(known.isEmpty ? "none" : known))")
        }
        let limiters = table.stringArray("limiters") ?? []
        var unique: [String] = []
        for limiter in limiters where !unique.contains(limiter) { unique.append(limiter) }
        let identifier = readIdentifier(table)
        var shadow: [String] = []
        for limiter in table.stringArray("shadow") ?? [] where !shadow.contains(limiter) { shadow.append(limiter) }
        let cost = table.integer("cost", minimum: 1, maximum: 10_000) ?? 1
        table.rejectUnknownKeys()
        guard let name, let upstream, let identifier else { return nil }
        var route = GatewayConfig.Route(
            name: name,
            pathPrefix: prefix,
            methods: methods,
            host: host,
            upstream: upstream,
            limiters: unique,
            identifier: identifier
        )
        route.shadow = shadow
        route.cost = cost
        return route
    }

    /// `identifier`: one part or an array of parts; `on_missing` (or its older spelling
    /// `on_missing_header`) says what a missing part means.
    private static func readIdentifier(_ table: TableReader) -> IdentifierRule? {
        var texts: [String] = ["client_ip"]
        switch table.raw("identifier") {
        case nil:
            break
        case .string(let text)?:
            texts = [text]
        case .array?:
            guard let parts = table.stringArray("identifier") else { return nil }
            guard !parts.isEmpty else {
                table.report("identifier", "expected at least one part, such as [\"header:X-API-Key\", \"client_ip\"]")
                return nil
            }
            texts = parts
        case let other?:
            table.report("identifier", "expected a string or an array of strings, found \(other.description)")
            return nil
        }
        let onMissing = readOnMissing(table)
        var parts: [IdentifierRule.Part] = []
        for text in texts {
            switch IdentifierRule.part(text) {
            case .success(let part):
                parts.append(part)
            case .failure(.badName(let what)):
                table.report("identifier", "expected a \(what) name after the colon, found \"\(text)\"")
                return nil
            case .failure(.unknownKind):
                table.report(
                    "identifier",
                    "expected \"client_ip\", \"global\", \"header:<Name>\", \"query:<name>\" or \"jwt:<claim>\", found \"\(text)\""
                )
                return nil
            }
        }
        guard let onMissing else { return nil }
        return IdentifierRule(parts: parts, onMissing: onMissing)
    }

    private static func readOnMissing(_ table: TableReader) -> IdentifierRule.OnMissing? {
        let given = table.string("on_missing")
        let older = table.string("on_missing_header")
        if let given, let older, given != older {
            table.report("on_missing_header", "on_missing is \"\(given)\" and on_missing_header \"\(older)\": keep one")
            return nil
        }
        let key = given == nil && older != nil ? "on_missing_header" : "on_missing"
        switch given ?? older ?? "client_ip" {
        case "client_ip": return .clientIP
        case "reject": return .reject
        case let text:
            table.report(key, "expected \"client_ip\" or \"reject\", found \"\(text)\"")
            return nil
        }
    }

    private static let jwtAlgorithms: Set<String> = ["RS256", "ES256", "HS256"]

    private static func readJWT(_ table: TableReader) -> GatewayConfig.JWTSettings? {
        let jwks = table.string("jwks_file").map { resolve($0, against: table.sink.file) }
        let secret = table.string("hs256_secret")
        let issuer = table.string("issuer")
        let audience = table.string("audience")
        let header = table.string("jwt_header")
        var algorithms: Set<String> = []
        if let listed = table.stringArray("algorithms") {
            for name in listed {
                if jwtAlgorithms.contains(name) {
                    algorithms.insert(name)
                } else {
                    table.report("algorithms", "expected RS256, ES256 or HS256, found \"\(name)\" (tokens signed otherwise, or unsigned, never verify)")
                }
            }
        } else {
            if jwks != nil { algorithms.formUnion(["RS256", "ES256"]) }
            if secret != nil { algorithms.insert("HS256") }
        }
        table.rejectUnknownKeys()
        if algorithms.isEmpty {
            table.report("algorithms", "no algorithm to verify tokens with: list some and give jwks_file or hs256_secret")
        }
        if algorithms.contains("HS256"), secret?.isEmpty ?? true {
            table.report("hs256_secret", "HS256 needs hs256_secret")
        } else if let secret, secret.utf8.count < 32 {
            // RFC 7518, 3.2: an HS256 key is at least as long as the hash.
            table.report("hs256_secret", "expected at least 32 bytes, found \(secret.utf8.count)")
        }
        if !algorithms.isDisjoint(with: ["RS256", "ES256"]), jwks == nil {
            table.report("jwks_file", "RS256 and ES256 need jwks_file")
        }
        if let header, header.isEmpty || !header.utf8.allSatisfy(HTTP1HeadParser.isTokenByte) {
            table.report("jwt_header", "expected a header name, found \"\(header)\"")
        }
        return GatewayConfig.JWTSettings(
            algorithms: algorithms,
            jwksPath: jwks,
            hs256Secret: secret,
            issuer: issuer,
            audience: audience,
            header: header?.lowercased()
        )
    }
}
